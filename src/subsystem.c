/*
 * Subsystem, namespace and port lookups, host access checks, NQN syntax,
 * and the stable identifiers (serial number, UUID, NGUID, EUI-64) derived
 * from a subsystem's NQN so that hosts see the same IDs after a restart.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "nvmfd.h"

#define NQN_UUID_PREFIX	"nqn.2014-08.org.nvmexpress:uuid:"

const char *
backend_type_name(enum backend_type t)
{
	return (t == BACKEND_RAM ? "ram" : t == BACKEND_FILE ? "file" :
	    t == BACKEND_BLOCK ? "block" : "rbd");
}

void
rbd_spec_free(struct rbd_spec *r)
{
	if (r == NULL)
		return;
	free(r->pool);
	free(r->image);
	free(r->nspace);
	free(r->user);
	free(r->keyring);
	free(r->conf);
	free(r);
}

static bool
str_same(const char *a, const char *b)
{
	return (a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0);
}

/* The same image reached the same way: a reload keeps it open. */
bool
rbd_spec_equal(const struct rbd_spec *a, const struct rbd_spec *b)
{
	if (a == NULL || b == NULL)
		return (a == b);
	return (str_same(a->pool, b->pool) && str_same(a->image, b->image) &&
	    str_same(a->nspace, b->nspace) && str_same(a->user, b->user) &&
	    str_same(a->keyring, b->keyring) && str_same(a->conf, b->conf));
}

void
rbd_spec_format(const struct rbd_spec *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s%s%s", r->pool, r->nspace ? r->nspace : "",
	    r->nspace ? "/" : "", r->image);
}

/* The 8-4-4-4-12 text form; buf holds at least 37 bytes. */
void
uuid_format(char *buf, size_t len, const uint8_t *u)
{
	snprintf(buf, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
	    u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* By hash: Connect, reload and the control commands look subsystems up by
 * NQN, and a site may have tens of thousands. */
struct subsystem *
subsystem_find(struct config *cfg, const char *nqn)
{
	if (cfg == NULL || nqn == NULL)
		return (NULL);
	return (hmap_get(&cfg->subsys_by_nqn, nqn, strlen(nqn)));
}

int
subsystem_link(struct config *cfg, struct subsystem *s)
{
	if (hmap_put(&cfg->subsys_by_nqn, s->nqn, strlen(s->nqn), s) == -1)
		return (-1);
	TAILQ_INSERT_TAIL(&cfg->subsystems, s, entry);
	return (0);
}

void
subsystem_unlink(struct config *cfg, struct subsystem *s)
{
	hmap_del(&cfg->subsys_by_nqn, s->nqn, strlen(s->nqn), s);
	TAILQ_REMOVE(&cfg->subsystems, s, entry);
}

struct namespace *
namespace_find(struct subsystem *s, uint32_t nsid)
{
	struct namespace *ns;

	if (s == NULL)
		return (NULL);
	/* Live subsystems: one atomic load, safe on any loop. */
	if (s->ns_table != NULL)
		return (nsid == 0 || nsid > NVMFD_MAX_NSID ? NULL :
		    atomic_load_explicit(&s->ns_table[nsid], memory_order_acquire));
	/* The list is sorted, so stop at the first larger NSID. */
	TAILQ_FOREACH(ns, &s->namespaces, entry) {
		if (ns->nsid == nsid)
			return (ns);
		if (ns->nsid > nsid)
			break;
	}
	return (NULL);
}

struct port *
port_find(struct config *cfg, uint16_t id)
{
	struct port *p;

	if (cfg == NULL)
		return (NULL);
	TAILQ_FOREACH(p, &cfg->ports, entry)
		if (p->id == id)
			return (p);
	return (NULL);
}

/* Identify's VWC bit: some namespace has a volatile write cache. */
bool
subsystem_has_vwc(struct subsystem *ss)
{
	struct namespace *ns;

	TAILQ_FOREACH(ns, &ss->namespaces, entry)
		if (ns->vwc)
			return (true);
	return (false);
}

struct host *
host_list_find(struct host_list *list, const char *hostnqn)
{
	struct host *h;

	TAILQ_FOREACH(h, list, entry)
		if (strcmp(h->nqn, hostnqn) == 0)
			return (h);
	return (NULL);
}

struct host *
host_find(struct subsystem *s, const char *hostnqn)
{
	return (host_list_find(&s->hosts, hostnqn));
}

/* Secrets are wiped, not just freed. */
void
host_free(struct host *h)
{
	auth_host_clear(h);
	host_tls_free(h->tls);
	free(h->from);
	free(h);
}

void
host_list_free(struct host_list *list)
{
	struct host *h;

	while ((h = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, h, entry);
		host_free(h);
	}
}

bool
hosts_allow(bool allow_any_host, struct host_list *list, const char *hostnqn,
    const struct sockaddr *peer)
{
	struct host *h;

	if (allow_any_host)
		return (true);
	if (hostnqn == NULL || (h = host_list_find(list, hostnqn)) == NULL)
		return (false);
	return (h->nfrom == 0 || prefix_match(h->from, h->nfrom, peer));
}

bool
subsystem_host_allowed(struct subsystem *s, const char *hostnqn,
    const struct sockaddr *peer)
{
	if (s == NULL)
		return (false);
	return (hosts_allow(s->allow_any_host, &s->hosts, hostnqn, peer));
}

bool
subsystem_on_port(struct subsystem *s, struct port *p)
{
	size_t i;

	if (s == NULL || p == NULL)
		return (false);
	if (s->port_ids == NULL)
		return (true);
	for (i = 0; i < s->nport_ids; i++)
		if (s->port_ids[i] == p->id)
			return (true);
	return (false);
}

/*
 * SHA-256 over "nvmfd:<label>\0<nqn>\0" and, for namespaces, the NSID in
 * big-endian order.  The label keeps the different identifiers independent.
 */
static void
id_hash(const char *label, const char *nqn, const uint32_t *nsid,
    uint8_t out[32])
{
	uint8_t buf[32 + NVMFD_NQN_MAX + 1 + 4];
	unsigned int outlen = 0;
	uint64_t h, z;
	size_t len, n;

	len = (size_t)snprintf((char *)buf, 32, "nvmfd:%s", label) + 1;
	n = strnlen(nqn, NVMFD_NQN_MAX);
	memcpy(buf + len, nqn, n);
	len += n;
	buf[len++] = '\0';
	if (nsid != NULL) {
		buf[len++] = *nsid >> 24;
		buf[len++] = *nsid >> 16;
		buf[len++] = *nsid >> 8;
		buf[len++] = *nsid;
	}
	if (EVP_Digest(buf, len, out, &outlen, EVP_sha256(), NULL) == 1 &&
	    outlen == 32)
		return;

	/*
	 * OpenSSL failed (out of memory, crippled provider): fall back to
	 * FNV-1a plus a splitmix64 stream so IDs stay stable and non-zero.
	 */
	h = 0xcbf29ce484222325ULL;
	for (n = 0; n < len; n++) {
		h ^= buf[n];
		h *= 0x100000001b3ULL;
	}
	for (n = 0; n < 32; n += 8) {
		h += 0x9e3779b97f4a7c15ULL;
		z = h;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		memcpy(out + n, &z, 8);
	}
}

void
namespace_derive_ids(struct namespace *ns)
{
	const char *nqn;
	uint8_t h[32];

	if (ns == NULL)
		return;
	nqn = ns->subsys != NULL ? ns->subsys->nqn : "";
	if (!ns->has_uuid) {
		id_hash("uuid", nqn, &ns->nsid, h);
		memcpy(ns->uuid, h, 16);
		/* Name-based (SHA) UUID: version 5, RFC 4122 variant. */
		ns->uuid[6] = (ns->uuid[6] & 0x0f) | 0x50;
		ns->uuid[8] = (ns->uuid[8] & 0x3f) | 0x80;
		ns->has_uuid = true;
	}
	if (!ns->has_nguid) {
		id_hash("nguid", nqn, &ns->nsid, h);
		memcpy(ns->nguid, h, 16);
		ns->has_nguid = true;
	}
	if (!ns->has_eui64) {
		id_hash("eui64", nqn, &ns->nsid, h);
		memcpy(ns->eui64, h, 8);
		/* Locally administered, unicast: never clashes with an OUI. */
		ns->eui64[0] = (ns->eui64[0] & 0xfc) | 0x02;
		ns->has_eui64 = true;
	}
}

void
subsystem_derive_serial(struct subsystem *s)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t h[32];
	size_t i;

	if (s == NULL)
		return;
	id_hash("serial", s->nqn, NULL, h);
	for (i = 0; i < 10; i++) {
		s->serial[2 * i] = hex[h[i] >> 4];
		s->serial[2 * i + 1] = hex[h[i] & 0xf];
	}
	s->serial[20] = '\0';
}

static bool
is_hex(char c)
{
	return ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F'));
}

static bool
is_digit(char c)
{
	return (c >= '0' && c <= '9');
}

static bool
is_alnum(char c)
{
	return (is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

/* 8-4-4-4-12 hex digits, exactly. */
static bool
uuid_text_valid(const char *s)
{
	size_t i;

	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return (false);
		} else if (!is_hex(s[i]))
			return (false);
	}
	return (s[36] == '\0');
}

/*
 * NQN syntax (NVMe Base Specification, "NVMe Qualified Names"):
 *   nqn.yyyy-mm.<reverse domain>:<anything>
 *   nqn.2014-08.org.nvmexpress:uuid:<8-4-4-4-12 hex UUID>
 * plus the well-known discovery NQN, which has no ':' part.  Only printable
 * ASCII without spaces is accepted, at most NVMFD_NQN_MAX characters.
 */
bool
nqn_valid(const char *nqn)
{
	const char *p, *colon;
	size_t len, i;
	int month;

	if (nqn == NULL)
		return (false);
	len = strnlen(nqn, NVMFD_NQN_MAX + 1);
	if (len == 0 || len > NVMFD_NQN_MAX)
		return (false);
	for (i = 0; i < len; i++)
		if ((unsigned char)nqn[i] <= 0x20 || (unsigned char)nqn[i] >= 0x7f)
			return (false);
	if (strcmp(nqn, NVMF_DISCOVERY_NQN) == 0)
		return (true);
	if (strncmp(nqn, NQN_UUID_PREFIX, strlen(NQN_UUID_PREFIX)) == 0)
		return (uuid_text_valid(nqn + strlen(NQN_UUID_PREFIX)));

	/* "nqn.yyyy-mm." */
	if (strncmp(nqn, "nqn.", 4) != 0)
		return (false);
	p = nqn + 4;
	for (i = 0; i < 4; i++)
		if (!is_digit(p[i]))
			return (false);
	if (p[4] != '-' || !is_digit(p[5]) || !is_digit(p[6]) || p[7] != '.')
		return (false);
	month = (p[5] - '0') * 10 + (p[6] - '0');
	if (month < 1 || month > 12)
		return (false);
	p += 8;

	/* Reverse domain: labels of letters, digits and '-', split by '.'. */
	colon = strchr(p, ':');
	if (colon == NULL || colon == p || colon[1] == '\0' || *p == '.')
		return (false);
	for (; p < colon; p++) {
		if (*p == '.') {
			if (p[1] == '.' || p + 1 == colon)
				return (false);
		} else if (!is_alnum(*p) && *p != '-')
			return (false);
	}
	return (true);
}
