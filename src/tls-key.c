/*
 * TLS settings as configured: a port's TLS mode, and an allowed host's
 * PSK, given inline or as "@FILE" (a file no one but its owner may read).
 * The key never appears in a message; its memory is wiped when freed.
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "nvmfd.h"
#include "tls.h"

static const char *tls_names[] = {
	[PORT_TLS_OFF] = "off", [PORT_TLS_OPTIONAL] = "optional",
	[PORT_TLS_REQUIRED] = "required",
};

const char *
port_tls_name(enum port_tls t)
{
	return (tls_names[t]);
}

int
port_tls_parse(const char *s, enum port_tls *out)
{
	for (size_t i = 0; i < nitems(tls_names); i++)
		if (strcmp(s, tls_names[i]) == 0) {
			*out = i;
			return (0);
		}
	return (-1);
}

/* A file of secrets (a key, a PSK file), mode 0600 or stricter: its
 * text, trailing white space trimmed.  0, or -1 with err. */
int
tls_read_secret_file(const char *path, char *buf, size_t bufsz, char *err,
    size_t errlen)
{
	struct stat st;
	ssize_t n;
	size_t len;
	int fd;

	if (path[0] != '/') {
		snprintf(err, errlen, "key file %.200s: must be an absolute "
		    "path", path);
		return (-1);
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		snprintf(err, errlen, "key file %.200s: %s", path,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return (-1);
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "key file %.200s: not a regular file",
		    path);
		close(fd);
		return (-1);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "key file %.200s: mode %04o lets group "
		    "or others at it (chmod 600)", path,
		    (unsigned)(st.st_mode & 07777));
		close(fd);
		return (-1);
	}
	n = read(fd, buf, bufsz - 1);
	close(fd);
	if (n < 0 || (size_t)n == bufsz - 1) {
		OPENSSL_cleanse(buf, bufsz);
		snprintf(err, errlen, "key file %.200s: %s", path, n < 0 ?
		    strerror(errno) : "too long");
		return (-1);
	}
	len = n;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
	    buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	return (0);
}

struct host_tls *
host_tls_load(const char *spec, const char *kdf, char *err, size_t errlen)
{
	struct host_tls *t;
	char text[256];
	const char *why;
	int rc;

	if (kdf != NULL && strcmp(kdf, "compat") != 0 &&
	    strcmp(kdf, "rfc8446") != 0) {
		snprintf(err, errlen, "TLS key derivation must be compat or "
		    "rfc8446, got \"%.40s\"", kdf);
		return (NULL);
	}
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->spec = strdup(spec)) == NULL) {
		free(t);
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	t->kdf = kdf != NULL && strcmp(kdf, "rfc8446") == 0 ?
	    TLS_KDF_RFC8446 : TLS_KDF_COMPAT;
	if (spec[0] == '@') {
		if (tls_read_secret_file(spec + 1, text, sizeof(text), err,
		    errlen) != 0) {
			host_tls_free(t);
			return (NULL);
		}
		rc = tls_key_parse(text, &t->key, &why);
		OPENSSL_cleanse(text, sizeof(text));
		if (rc != 0)
			snprintf(err, errlen, "key file %.200s: the key %s",
			    spec + 1, why);
	} else if ((rc = tls_key_parse(spec, &t->key, &why)) != 0)
		snprintf(err, errlen, "the TLS key %s", why);
	if (rc != 0) {
		host_tls_free(t);
		return (NULL);
	}
	return (t);
}

void
host_tls_free(struct host_tls *t)
{
	if (t == NULL)
		return;
	if (t->spec != NULL) {
		OPENSSL_cleanse(t->spec, strlen(t->spec));
		free(t->spec);
	}
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

bool
host_tls_equal(const struct host_tls *a, const struct host_tls *b)
{
	if (a == NULL || b == NULL)
		return (a == b);
	return (a->kdf == b->kdf && a->key.hmac == b->key.hmac &&
	    a->key.len == b->key.len && strcmp(a->spec, b->spec) == 0 &&
	    CRYPTO_memcmp(a->key.key, b->key.key, a->key.len) == 0);
}

const char *
host_tls_spec(const struct host_tls *t)
{
	return (t->spec);
}

const char *
host_tls_kdf_name(const struct host_tls *t)
{
	return (t->kdf == TLS_KDF_RFC8446 ? "rfc8446" : "compat");
}

static const struct host_tls *
subsys_host_tls(struct subsystem *ss, const char *hostnqn)
{
	struct host *h;

	if (ss->removed)
		return (NULL);
	TAILQ_FOREACH(h, &ss->hosts, entry)
		if (strcmp(h->nqn, hostnqn) == 0)
			return (h->tls);
	return (NULL);
}

const struct host_tls *
host_tls_find(struct config *cf, const char *subnqn, const char *hostnqn)
{
	const struct host_tls *t = NULL;
	struct subsystem *ss;
	struct host *h;

	if (strcmp(subnqn, NVMF_DISCOVERY_NQN) != 0) {
		if ((ss = subsystem_find(cf, subnqn)) == NULL)
			return (NULL);
		return (subsys_host_tls(ss, hostnqn));
	}
	/* Discovery: the host's key in the discovery section, else its key
	 * on any subsystem. */
	if ((h = discovery_host_find(cf, hostnqn)) != NULL && h->tls != NULL)
		return (h->tls);
	TAILQ_FOREACH(ss, &cf->subsystems, entry)
		if ((t = subsys_host_tls(ss, hostnqn)) != NULL)
			break;
	return (t);
}

/*
 * Host role: from a configured key (spec as for host_tls_load) the
 * version 0 identity for hostnqn and subnqn and its TLS PSK, derived as
 * kdf says (NULL: compat, like nvme-cli 2.13).
 */
int
host_psk_make(struct host_psk *hp, const char *spec, const char *kdf,
    const char *hostnqn, const char *subnqn, char *err, size_t errlen)
{
	struct host_tls *t;
	struct tls_identity ti;
	uint8_t retained[TLS_PSK_MAX];
	int rc = -1;

	memset(hp, 0, sizeof(*hp));
	if ((t = host_tls_load(spec, kdf, err, errlen)) == NULL)
		return (-1);
	hp->hash = tls_key_hash(&t->key);
	if (tls_retained_psk(&t->key, hostnqn, t->kdf, retained) != 0 ||
	    tls_identity_build(0, hp->hash, retained, t->key.len, hostnqn,
	    subnqn, hp->identity, sizeof(hp->identity)) != 0 ||
	    tls_identity_parse((const uint8_t *)hp->identity,
	    strlen(hp->identity), &ti) != 0 ||
	    tls_psk_for_identity(&t->key, &ti, hp->identity, t->kdf, hp->psk,
	    &hp->len) != 0)
		snprintf(err, errlen, "cannot derive a TLS PSK for %s on %s",
		    hostnqn, subnqn);
	else
		rc = 0;
	OPENSSL_cleanse(retained, sizeof(retained));
	host_tls_free(t);
	return (rc);
}
