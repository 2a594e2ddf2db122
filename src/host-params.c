/*
 * Settings of a host association, from nvmfctl connect's options or a
 * YAML host.connections entry: one parser for both ("-" and "_" alike).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmfd.h"
#include "host.h"
#include "nbd-dev.h"

static int
parse_uuid(const char *s, uint8_t out[16])
{
	int n = 0;

	for (; *s && n < 32; s++) {
		int v;

		if (*s == '-')
			continue;
		if (!isxdigit((unsigned char)*s))
			return (-1);
		v = isdigit((unsigned char)*s) ? *s - '0' :
		    tolower((unsigned char)*s) - 'a' + 10;
		if (n % 2 == 0)
			out[n / 2] = (uint8_t)(v << 4);
		else
			out[n / 2] |= (uint8_t)v;
		n++;
	}
	return (n == 32 && *s == '\0' ? 0 : -1);
}

/* A host ID and NQN stable for this machine: derived from its name. */
void
host_params_default(struct host_params *p)
{
	char name[256] = "nvmfd", id[40];

	memset(p, 0, sizeof(*p));
	gethostname(name, sizeof(name) - 1);
	for (int i = 0; i < 4; i++)
		put_le32(p->hostid + 4 * i, crc32c_update(0x9e3779b9u * (i + 1),
		    name, strlen(name)));
	p->hostid[6] = (p->hostid[6] & 0x0f) | 0x40;	/* UUID version 4 */
	p->hostid[8] = (p->hostid[8] & 0x3f) | 0x80;
	uuid_format(id, sizeof(id), p->hostid);
	snprintf(p->hostnqn, sizeof(p->hostnqn),
	    "nqn.2014-08.org.nvmexpress:uuid:%s", id);
	snprintf(p->trsvcid, sizeof(p->trsvcid), "4420");
	p->nr_io_queues = 1;
	p->queue_size = HOST_DEF_QUEUE_SIZE;
	p->kato_s = HOST_DEF_KATO;
	p->reconnect_delay_s = HOST_DEF_RECONNECT;
	p->ctrl_loss_tmo_s = HOST_DEF_CTRL_LOSS;
}

static int
get_num(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno || n < lo || n > hi)
		return (-1);
	*out = (uint32_t)n;
	return (0);
}

static int
get_flag(const char *v, bool *out)
{
	if (v == NULL || *v == '\0' || !strcmp(v, "on") || !strcmp(v, "true") ||
	    !strcmp(v, "yes") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no") ||
	    !strcmp(v, "0"))
		*out = false;
	else
		return (-1);
	return (0);
}

/*
 * A key: the secret itself or @FILE, loaded now to be refused early; an
 * error never quotes it.
 */
static int
set_secret(struct host_params *p, const char *k, const char *v, char *err,
    size_t errlen)
{
	bool tls = !strcmp(k, "tls_key");
	char *dst = tls ? p->tls_key : !strcmp(k, "dhchap_secret") ?
	    p->dhchap_secret : p->dhchap_ctrl_secret;
	char e[256];

	if (*v == '\0' || strlen(v) >= HOST_SECRET_MAX) {
		snprintf(err, errlen, "%s: a key, or @FILE, is required", k);
		return (-1);
	}
	if (host_sec_check(tls, v, e, sizeof(e)) != 0) {
		snprintf(err, errlen, "%s: %s", k, e);
		return (-1);
	}
	snprintf(dst, HOST_SECRET_MAX, "%s", v);
	return (0);
}

/*
 * One setting by name; 0, or -1 with err.  Flags (header-digest,
 * data-digest) take no value or on/off.
 */
int
host_param_set(struct host_params *p, const char *key, const char *v,
    char *err, size_t errlen)
{
	char k[32];
	uint32_t n;
	size_t i;

	for (i = 0; key[i] && i < sizeof(k) - 1; i++)
		k[i] = key[i] == '-' ? '_' : key[i];
	k[i] = '\0';
	if (v == NULL)
		v = "";
	if (!strcmp(k, "transport")) {
		if (strcmp(v, "tcp") != 0)
			goto bad;
	} else if (!strcmp(k, "address") || !strcmp(k, "traddr")) {
		if (*v == '\0' || strlen(v) >= sizeof(p->traddr))
			goto bad;
		snprintf(p->traddr, sizeof(p->traddr), "%s", v);
	} else if (!strcmp(k, "port") || !strcmp(k, "trsvcid")) {
		if (get_num(v, 1, 65535, &n) != 0)
			goto bad;
		snprintf(p->trsvcid, sizeof(p->trsvcid), "%u", n);
	} else if (!strcmp(k, "nqn")) {
		if (!nqn_valid(v))
			goto bad;
		snprintf(p->subnqn, sizeof(p->subnqn), "%s", v);
	} else if (!strcmp(k, "hostnqn")) {
		if (!nqn_valid(v))
			goto bad;
		snprintf(p->hostnqn, sizeof(p->hostnqn), "%s", v);
	} else if (!strcmp(k, "hostid")) {
		if (parse_uuid(v, p->hostid) != 0)
			goto bad;
	} else if (!strcmp(k, "nr_io_queues")) {
		if (get_num(v, 1, HOST_MAX_IOQ, &n) != 0)
			goto bad;
		p->nr_io_queues = (int)n;
	} else if (!strcmp(k, "queue_size")) {
		if (get_num(v, 2, 1024, &n) != 0)
			goto bad;
		p->queue_size = (int)n;
	} else if (!strcmp(k, "keep_alive_tmo")) {
		if (get_num(v, 0, 3600, &p->kato_s) != 0)
			goto bad;
	} else if (!strcmp(k, "reconnect_delay")) {
		if (get_num(v, 1, 3600, &p->reconnect_delay_s) != 0)
			goto bad;
	} else if (!strcmp(k, "ctrl_loss_tmo")) {
		if (get_num(v, 0, 86400 * 7, &p->ctrl_loss_tmo_s) != 0)
			goto bad;
	} else if (!strcmp(k, "fast_io_fail_tmo")) {
		if (get_num(v, 0, 86400 * 7, &p->fast_io_fail_tmo_s) != 0)
			goto bad;
	} else if (!strcmp(k, "hdr_digest") || !strcmp(k, "header_digest")) {
		if (get_flag(v, &p->hdgst) != 0)
			goto bad;
	} else if (!strcmp(k, "data_digest")) {
		if (get_flag(v, &p->ddgst) != 0)
			goto bad;
	} else if (!strcmp(k, "nbd_tls")) {
		/* optional: as host.nbd.tls says */
		if (strcmp(v, "required") != 0 && strcmp(v, "optional") != 0)
			goto bad;
		p->nbd_tls_required = !strcmp(v, "required");
	} else if (!strcmp(k, "export_prefix")) {
		if (strlen(v) >= sizeof(p->export_prefix) - 12)
			goto bad;
		snprintf(p->export_prefix, sizeof(p->export_prefix), "%s", v);
	} else if (!strcmp(k, "nbd_device")) {
		if (nbdnl_device_index(v) < 0)
			goto bad;
		snprintf(p->nbd_device, sizeof(p->nbd_device), "%s", v);
	} else if (!strcmp(k, "nbd_timeout")) {
		if (get_num(v, 0, 86400 * 7, &p->nbd_timeout_s) != 0)
			goto bad;
	} else if (!strcmp(k, "dhchap_secret") ||
	    !strcmp(k, "dhchap_ctrl_secret") || !strcmp(k, "tls_key")) {
		return (set_secret(p, k, v, err, errlen));
	} else if (!strcmp(k, "tls_kdf")) {
		if (strcmp(v, "compat") != 0 && strcmp(v, "rfc8446") != 0)
			goto bad;
		snprintf(p->tls_kdf, sizeof(p->tls_kdf), "%s", v);
	} else {
		snprintf(err, errlen, "unknown setting %s", key);
		return (-1);
	}
	return (0);
bad:
	snprintf(err, errlen, "%s: invalid value \"%.64s\"", key, v);
	return (-1);
}

/* What a connection cannot do without. */
int
host_params_check(const struct host_params *p, char *err, size_t errlen)
{
	if (p->traddr[0] == '\0') {
		snprintf(err, errlen, "an address (-a) is required");
		return (-1);
	}
	if (p->subnqn[0] == '\0') {
		snprintf(err, errlen, "a subsystem NQN (-n) is required");
		return (-1);
	}
	if (p->dhchap_ctrl_secret[0] != '\0' && p->dhchap_secret[0] == '\0') {
		snprintf(err, errlen, "dhchap-ctrl-secret needs a "
		    "dhchap-secret too");
		return (-1);
	}
	if (p->tls_kdf[0] != '\0' && p->tls_key[0] == '\0') {
		snprintf(err, errlen, "tls-kdf needs a tls-key");
		return (-1);
	}
	if (p->nbd_device[0] != '\0' &&
	    strcmp(p->subnqn, NVMF_DISCOVERY_NQN) == 0) {
		snprintf(err, errlen, "a discovery association has no "
		    "namespace for an NBD device");
		return (-1);
	}
	return (0);
}
