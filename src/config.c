/*
 * Configuration: the built-in default and the YAML file (see nvmfd.yaml(5)).
 *
 * The file is loaded with libyaml's document API and then walked with a
 * fixed schema.  Every error is reported as "FILE:LINE:COLUMN: KEY: message"
 * where KEY is the full path of the offending setting, e.g.
 * "subsystems[0].namespaces[1].size".  Value errors point at the value,
 * unknown or duplicate keys at the key, missing keys at the start of the
 * mapping that lacks them.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "nvmfd.h"
#include "host.h"

#define DEF_WORKERS		0
#define MAX_HOST_PREFIXES	64	/* from: entries per host */
#define MAX_WORKERS		1024
#define DEF_POLL_US		50	/* see poll_us in nvmfd.yaml(5) */
#define MAX_POLL_US		100000	/* beyond 100 ms it is a spinning core */
#define DEF_MDTS		(1u << 20)
#define MIN_MDTS		4096u
#define MAX_MDTS		(16u << 20)
#define DEF_MAX_CONTROLLERS	256
#define DEF_MAX_DISC_CONTROLLERS 64
#define MAX_CONTROLLERS		0xffef	/* CNTLID 1..0xffef */
#define DEF_MAX_CONNECTIONS	1024
#define MAX_CONNECTIONS		1048576
#define DEF_TCP_PORT		4420
#define DEF_DISCOVERY_PORT	8009
#define DEF_INLINE_DATA		16384u
#define MAX_INLINE_DATA		131072u
#define DEF_MAXH2CDATA		131072u
#define MIN_MAXH2CDATA		4096u
#define MAX_MAXH2CDATA		(16u << 20)
#define DEF_QUEUE_DEPTH		128
#define MIN_QUEUE_DEPTH		2
#define MAX_QUEUE_DEPTH		1024
#define DEF_MAX_IO_QUEUES	32
#define MAX_IO_QUEUES		1024
#define DEF_BLOCK_SIZE		512
#define DEF_RAM_SIZE		(1ULL << 30)
#define DEF_MODEL		"nvmfd"
#define SERIAL_MAX		20
#define MODEL_MAX		40

struct ctx {
	const char	*file;
	yaml_document_t	*doc;
	char		*err;
	size_t		 errlen;
	struct config	*cfg;
	struct hmap	 ids[3];	/* explicit uuid, nguid, eui64 seen */
};

/* One known key of a mapping, and where it was found (NULL: absent). */
struct field {
	const char	*name;
	yaml_node_t	*key;
	yaml_node_t	*val;
};

static struct config *config_load_fp(FILE *, const char *, bool, char *,
    size_t);

/* ---------------------------------------------------------------- errors */

static int __printflike(5, 6)
fail(struct ctx *c, const yaml_node_t *at, const char *path, const char *key,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	size_t line = 1, col = 1;

	if (at != NULL) {
		line = at->start_mark.line + 1;
		col = at->start_mark.column + 1;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err == NULL || c->errlen == 0)
		return (-1);
	if (key != NULL && *key == '\0')
		key = NULL;	/* list items are named by their path alone */
	if (*path == '\0' && key == NULL)
		path = "(root)";
	snprintf(c->err, c->errlen, "%s:%zu:%zu: %s%s%s: %s", c->file, line, col,
	    path, *path != '\0' && key != NULL ? "." : "",
	    key != NULL ? key : "", msg);
	return (-1);
}

static int
fail_oom(struct ctx *c, const yaml_node_t *at, const char *path,
    const char *key)
{
	return (fail(c, at, path, key, "out of memory"));
}

/* Reader errors only carry a byte offset; count lines to get a position. */
static void
offset_to_mark(FILE *fp, size_t offset, size_t *line, size_t *col)
{
	size_t i;
	int ch;

	*line = 1;
	*col = 1;
	if (fseek(fp, 0, SEEK_SET) != 0)
		return;
	for (i = 0; i < offset && (ch = getc(fp)) != EOF; i++) {
		if (ch == '\n') {
			(*line)++;
			*col = 1;
		} else
			(*col)++;
	}
}

static void
yaml_fail(struct ctx *c, yaml_parser_t *parser, FILE *fp)
{
	size_t line, col;

	if (c->err == NULL || c->errlen == 0)
		return;
	if (parser->error == YAML_MEMORY_ERROR) {
		snprintf(c->err, c->errlen, "%s:1:1: yaml: out of memory",
		    c->file);
		return;
	}
	if (parser->error == YAML_READER_ERROR) {
		offset_to_mark(fp, parser->problem_offset, &line, &col);
		snprintf(c->err, c->errlen, "%s:%zu:%zu: yaml: %s", c->file,
		    line, col, parser->problem != NULL ? parser->problem :
		    "cannot read the file");
		return;
	}
	line = parser->problem_mark.line + 1;
	col = parser->problem_mark.column + 1;
	if (parser->context != NULL)
		snprintf(c->err, c->errlen,
		    "%s:%zu:%zu: yaml: %s (%s at line %zu, column %zu)",
		    c->file, line, col, parser->problem != NULL ?
		    parser->problem : "syntax error", parser->context,
		    parser->context_mark.line + 1,
		    parser->context_mark.column + 1);
	else
		snprintf(c->err, c->errlen, "%s:%zu:%zu: yaml: %s", c->file,
		    line, col, parser->problem != NULL ? parser->problem :
		    "syntax error");
}

/* ----------------------------------------------------------- node access */

static const char *
sval(const yaml_node_t *n)
{
	return ((const char *)n->data.scalar.value);
}

static bool
is_null(const yaml_node_t *n)
{
	const char *v;

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return (false);
	v = sval(n);
	return (*v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	    strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0);
}

/* What a node is, for "must be X, got Y" messages. */
static const char *
describe(const yaml_node_t *n, char *buf, size_t len)
{
	switch (n->type) {
	case YAML_SEQUENCE_NODE:
		return ("a list");
	case YAML_MAPPING_NODE:
		return ("a mapping");
	case YAML_SCALAR_NODE:
		if (is_null(n))
			return ("nothing");
		if (n->data.scalar.length > 40)
			snprintf(buf, len, "\"%.37s...\"", sval(n));
		else
			snprintf(buf, len, "\"%s\"", sval(n));
		return (buf);
	default:
		return ("an empty node");
	}
}

static yaml_node_t *
node(struct ctx *c, int id)
{
	return (yaml_document_get_node(c->doc, id));
}

/*
 * Collect the values of a mapping's keys into f.  Unknown keys, duplicate
 * keys and non-scalar keys are errors.
 */
static int
get_fields(struct ctx *c, yaml_node_t *map, const char *path,
    struct field *f, size_t nf)
{
	yaml_node_pair_t *pair;
	yaml_node_t *k;
	char known[256];
	size_t i, off;

	for (pair = map->data.mapping.pairs.start;
	    pair < map->data.mapping.pairs.top; pair++) {
		k = node(c, pair->key);
		if (k == NULL || k->type != YAML_SCALAR_NODE || is_null(k))
			return (fail(c, k, path, NULL,
			    "keys must be plain words"));
		if (strlen(sval(k)) != k->data.scalar.length)
			return (fail(c, k, path, NULL,
			    "key contains a NUL character"));
		for (i = 0; i < nf; i++)
			if (strcmp(f[i].name, sval(k)) == 0)
				break;
		if (i == nf) {
			known[0] = '\0';
			for (i = 0, off = 0; i < nf && off < sizeof(known); i++)
				off += snprintf(known + off, sizeof(known) - off,
				    "%s%s", i ? ", " : "", f[i].name);
			return (fail(c, k, path, sval(k),
			    "unknown key (expected one of: %s)", known));
		}
		if (f[i].key != NULL)
			return (fail(c, k, path, sval(k),
			    "duplicate key (first at line %zu)",
			    f[i].key->start_mark.line + 1));
		f[i].key = k;
		f[i].val = node(c, pair->value);
	}
	return (0);
}

static int
get_string(struct ctx *c, const char *path, const struct field *f,
    const char **out)
{
	char d[64];
	yaml_node_t *v = f->val;

	if (v->type != YAML_SCALAR_NODE || is_null(v))
		return (fail(c, v, path, f->name, "must be a string, got %s",
		    describe(v, d, sizeof(d))));
	if (strlen(sval(v)) != v->data.scalar.length)
		return (fail(c, v, path, f->name,
		    "must not contain a NUL character"));
	if (v->data.scalar.length == 0)
		return (fail(c, v, path, f->name, "must not be empty"));
	*out = sval(v);
	return (0);
}

/* Decimal digits only; -1 not a number, -2 too large. */
static int
parse_u64(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;
	unsigned d;

	if (*s < '0' || *s > '9')
		return (-1);
	for (; *s >= '0' && *s <= '9'; s++) {
		d = *s - '0';
		if (v > (UINT64_MAX - d) / 10) {
			while (*s >= '0' && *s <= '9')
				s++;
			*sp = s;
			return (-2);
		}
		v = v * 10 + d;
	}
	*sp = s;
	*out = v;
	return (0);
}

static int
get_uint(struct ctx *c, const char *path, const struct field *f,
    uint64_t min, uint64_t max, uint64_t *out)
{
	char d[64];
	yaml_node_t *v = f->val;
	const char *s;
	uint64_t n = 0;
	int rc;

	if (v->type != YAML_SCALAR_NODE || is_null(v))
		return (fail(c, v, path, f->name, "must be an integer, got %s",
		    describe(v, d, sizeof(d))));
	s = sval(v);
	if (*s == '-' && s[1] >= '0' && s[1] <= '9')
		return (fail(c, v, path, f->name,
		    "must be between %llu and %llu, got %s",
		    (unsigned long long)min, (unsigned long long)max, s));
	rc = parse_u64(&s, &n);
	if (rc == -1 || *s != '\0')
		return (fail(c, v, path, f->name, "must be an integer, got %s",
		    describe(v, d, sizeof(d))));
	if (rc == -2 || n < min || n > max)
		return (fail(c, v, path, f->name,
		    "must be between %llu and %llu, got %s",
		    (unsigned long long)min, (unsigned long long)max, sval(v)));
	*out = n;
	return (0);
}

/*
 * "4096", "16K", "16KiB", "1 G", "2T": binary multiples, suffix case
 * insensitive.  -1 malformed, -2 too large.
 */
int
config_parse_size(const char *s, uint64_t *out)
{
	uint64_t v;
	unsigned shift = 0;
	int rc;

	if ((rc = parse_u64(&s, &v)) != 0)
		return (rc);
	while (*s == ' ')
		s++;
	if (*s != '\0') {
		switch (*s) {
		case 'k': case 'K':
			shift = 10;
			break;
		case 'm': case 'M':
			shift = 20;
			break;
		case 'g': case 'G':
			shift = 30;
			break;
		case 't': case 'T':
			shift = 40;
			break;
		default:
			return (-1);
		}
		s++;
		if (*s == 'i' || *s == 'I') {
			s++;
			if (*s != 'b' && *s != 'B')
				return (-1);
			s++;
		}
		if (*s != '\0')
			return (-1);
	}
	if (shift != 0 && v > (UINT64_MAX >> shift))
		return (-2);
	*out = v << shift;
	return (0);
}

static int
get_size(struct ctx *c, const char *path, const struct field *f,
    uint64_t *out)
{
	char d[64];
	yaml_node_t *v = f->val;
	int rc;

	if (v->type != YAML_SCALAR_NODE || is_null(v))
		return (fail(c, v, path, f->name,
		    "must be a size like 1G or 512M, got %s",
		    describe(v, d, sizeof(d))));
	rc = config_parse_size(sval(v), out);
	if (rc == -2)
		return (fail(c, v, path, f->name, "%s is too large", sval(v)));
	if (rc != 0)
		return (fail(c, v, path, f->name,
		    "must be a size like 1G or 512M, got %s",
		    describe(v, d, sizeof(d))));
	return (0);
}

static int
get_bool(struct ctx *c, const char *path, const struct field *f, bool *out)
{
	static const char *const yes[] = { "true", "True", "TRUE", "yes",
	    "Yes", "YES", "on", "On", "ON" };
	static const char *const no[] = { "false", "False", "FALSE", "no",
	    "No", "NO", "off", "Off", "OFF" };
	char d[64];
	yaml_node_t *v = f->val;
	size_t i;

	if (v->type == YAML_SCALAR_NODE) {
		for (i = 0; i < nitems(yes); i++) {
			if (strcmp(sval(v), yes[i]) == 0) {
				*out = true;
				return (0);
			}
			if (strcmp(sval(v), no[i]) == 0) {
				*out = false;
				return (0);
			}
		}
	}
	return (fail(c, v, path, f->name, "must be true or false, got %s",
	    describe(v, d, sizeof(d))));
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return (ch - '0');
	if (ch >= 'a' && ch <= 'f')
		return (ch - 'a' + 10);
	if (ch >= 'A' && ch <= 'F')
		return (ch - 'A' + 10);
	return (-1);
}

/*
 * n bytes as 2n hex digits.  With seps, '-' and ':' between digits are
 * ignored; without, the text must be a canonical 8-4-4-4-12 UUID.
 */
static bool
parse_hex(const char *s, uint8_t *out, size_t n, bool seps)
{
	size_t nd = 0, i = 0;
	int h;

	if (!seps) {
		if (strlen(s) != 36 || s[8] != '-' || s[13] != '-' ||
		    s[18] != '-' || s[23] != '-')
			return (false);
	}
	for (; s[i] != '\0'; i++) {
		if (s[i] == '-' || (seps && s[i] == ':'))
			continue;
		if ((h = hexval(s[i])) < 0 || nd >= 2 * n)
			return (false);
		if (nd % 2 == 0)
			out[nd / 2] = h << 4;
		else
			out[nd / 2] |= h;
		nd++;
	}
	return (nd == 2 * n);
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++ != 0)
			return (false);
	return (true);
}

static int
get_id(struct ctx *c, const char *path, const struct field *f, uint8_t *out,
    size_t n, bool seps, const char *what)
{
	const char *s;

	if (get_string(c, path, f, &s) == -1)
		return (-1);
	if (!parse_hex(s, out, n, seps))
		return (fail(c, f->val, path, f->name, "must be %s, got \"%.48s\"",
		    what, s));
	if (all_zero(out, n))
		return (fail(c, f->val, path, f->name,
		    "must not be all zeros (zero means \"no identifier\")"));
	return (0);
}

/* Numeric IPv4 or IPv6 address; returns the family or -1. */
static int
parse_addr(const char *s, uint8_t bin[16])
{
	memset(bin, 0, 16);
	if (inet_pton(AF_INET, s, bin) == 1)
		return (AF_INET);
	if (inet_pton(AF_INET6, s, bin) == 1)
		return (AF_INET6);
	return (-1);
}

static int
get_addr(struct ctx *c, const char *path, const struct field *f, char *dst,
    size_t dstlen, int *family, uint8_t bin[16])
{
	const char *s;
	int fam;

	if (get_string(c, path, f, &s) == -1)
		return (-1);
	if (strlen(s) >= dstlen || (fam = parse_addr(s, bin)) == -1)
		return (fail(c, f->val, path, f->name,
		    "must be a numeric IPv4 or IPv6 address, got \"%.64s\"", s));
	snprintf(dst, dstlen, "%s", s);
	*family = fam;
	return (0);
}

static int
check_mapping(struct ctx *c, yaml_node_t *n, const char *path,
    const char *what)
{
	char d[64];

	if (n->type != YAML_MAPPING_NODE)
		return (fail(c, n, path, NULL, "must be %s (a mapping), got %s",
		    what, describe(n, d, sizeof(d))));
	return (0);
}

static int
check_list(struct ctx *c, const char *path, const struct field *f,
    const char *what)
{
	char d[64];

	if (f->val->type != YAML_SEQUENCE_NODE)
		return (fail(c, f->val, path, f->name,
		    "must be a list of %s, got %s", what,
		    describe(f->val, d, sizeof(d))));
	return (0);
}

static size_t
list_len(const yaml_node_t *n)
{
	return ((size_t)(n->data.sequence.items.top -
	    n->data.sequence.items.start));
}

static yaml_node_t *
list_item(struct ctx *c, const yaml_node_t *n, size_t i)
{
	return (node(c, n->data.sequence.items.start[i]));
}

/* ---------------------------------------------------------- constructors */

static struct config *
config_new(void)
{
	struct config *cfg;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return (NULL);
	cfg->workers = DEF_WORKERS;
	cfg->poll_us = DEF_POLL_US;
	cfg->mdts = DEF_MDTS;
	cfg->max_controllers = DEF_MAX_CONTROLLERS;
	cfg->max_disc_controllers = DEF_MAX_DISC_CONTROLLERS;
	cfg->max_connections = DEF_MAX_CONNECTIONS;
	cfg->cntlid_min = 1;
	cfg->cntlid_max = NVMF_CNTLID_MAX;
	TAILQ_INIT(&cfg->ports);
	TAILQ_INIT(&cfg->subsystems);
	TAILQ_INIT(&cfg->referrals);
	cfg->discovery.allow_any_host = true;
	TAILQ_INIT(&cfg->discovery.hosts);
	return (cfg);
}

static struct port *
port_new(void)
{
	struct port *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return (NULL);
	snprintf(p->service, sizeof(p->service), "%d", DEF_TCP_PORT);
	p->inline_data_size = DEF_INLINE_DATA;
	p->maxh2cdata = DEF_MAXH2CDATA;
	p->max_queue_depth = DEF_QUEUE_DEPTH;
	p->header_digest = true;
	p->data_digest = true;
	p->fd = -1;
	return (p);
}

static struct subsystem *
subsys_new(void)
{
	struct subsystem *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return (NULL);
	snprintf(s->model, sizeof(s->model), "%s", DEF_MODEL);
	s->allow_any_host = true;
	TAILQ_INIT(&s->hosts);
	TAILQ_INIT(&s->namespaces);
	s->max_io_queues = DEF_MAX_IO_QUEUES;
	TAILQ_INIT(&s->controllers);
	s->next_cntlid = 1;
	return (s);
}

static struct namespace *
ns_new(struct subsystem *s)
{
	struct namespace *ns;

	if ((ns = calloc(1, sizeof(*ns))) == NULL)
		return (NULL);
	ns->subsys = s;
	ns->fd = -1;
	ns->anagrpid = ANA_DEFAULT_GROUP;
	return (ns);
}

/* Derived values: serial numbers and namespace identifiers. */
static void
config_finish(struct config *cfg)
{
	struct subsystem *s;
	struct namespace *ns;

	TAILQ_FOREACH(s, &cfg->subsystems, entry) {
		if (s->serial[0] == '\0')
			subsystem_derive_serial(s);
		TAILQ_FOREACH(ns, &s->namespaces, entry)
			namespace_derive_ids(ns);
	}
}

/* ------------------------------------------------------ DH-HMAC-CHAP */

/* dhchap_hashes / dhchap_dhgroups: names in preference order. */
static int
parse_offer(struct ctx *c, const char *path, const struct field *f,
    bool groups, struct dhchap_offer *o)
{
	struct field item = { .name = "" };
	char ipath[128];
	uint8_t *list = groups ? o->groups : o->hashes;
	uint8_t *n = groups ? &o->ngroups : &o->nhashes;
	const char *name;
	size_t i, j;
	int id;

	if (check_list(c, path, f, groups ? "DH groups" : "hashes") == -1)
		return (-1);
	if (list_len(f->val) == 0)
		return (fail(c, f->val, path, f->name, "must name at least one "
		    "(leave it out to offer all)"));
	for (i = 0; i < list_len(f->val); i++) {
		snprintf(ipath, sizeof(ipath), "%s%s%s[%zu]", path,
		    *path ? "." : "", f->name, i);
		item.val = list_item(c, f->val, i);
		/* An unquoted null is YAML's null, and the group's name. */
		if (groups && item.val->type == YAML_SCALAR_NODE &&
		    strcasecmp(sval(item.val), "null") == 0)
			name = "null";
		else if (get_string(c, ipath, &item, &name) == -1)
			return (-1);
		id = groups ? dhchap_group_id(name) : dhchap_hash_id(name);
		if (id < 0)
			return (fail(c, item.val, ipath, NULL, "must be %s, got "
			    "\"%.32s\"", groups ? "null, ffdhe2048, ffdhe3072, "
			    "ffdhe4096, ffdhe6144 or ffdhe8192" :
			    "sha256, sha384 or sha512", name));
		for (j = 0; j < *n; j++)
			if (list[j] == id)
				return (fail(c, item.val, ipath, NULL,
				    "\"%s\" is listed twice", name));
		list[(*n)++] = id;
	}
	return (0);
}

/* A secret as written (kept for save) and parsed (file read now). */
static int
get_secret(struct ctx *c, const char *path, const struct field *f,
    char **text, struct dhchap_key *key)
{
	const char *s;
	char msg[256];

	if (get_string(c, path, f, &s) == -1)
		return (-1);
	if (auth_key_load(s, key, msg, sizeof(msg)) == -1)
		return (fail(c, f->val, path, f->name, "%s", msg));
	if ((*text = strdup(s)) == NULL)
		return (fail_oom(c, f->val, path, f->name));
	return (0);
}

/* ----------------------------------------------------------------- ports */

/* True if a and b cannot both be bound: same address, or one a wildcard. */
static bool
addr_overlap(int fa, const char *a, const char *sa, int fb, const char *b,
    const char *sb)
{
	uint8_t ba[16], bb[16];

	if (fa != fb || strcmp(sa, sb) != 0)
		return (false);
	parse_addr(a, ba);
	parse_addr(b, bb);
	return (memcmp(ba, bb, 16) == 0 || all_zero(ba, 16) ||
	    all_zero(bb, 16));
}

static int
parse_port(struct ctx *c, yaml_node_t *n, const char *path)
{
	enum { P_ID, P_ADDRESS, P_PORT, P_INLINE, P_MAXH2C, P_QDEPTH,
	    P_HDGST, P_DDGST, P_HASHES, P_GROUPS, P_TLS, P_N };
	struct field f[P_N] = {
		[P_ID] = { "id" }, [P_ADDRESS] = { "address" },
		[P_PORT] = { "port" }, [P_INLINE] = { "inline_data_size" },
		[P_MAXH2C] = { "maxh2cdata" },
		[P_QDEPTH] = { "max_queue_depth" },
		[P_HDGST] = { "header_digest" }, [P_DDGST] = { "data_digest" },
		[P_HASHES] = { "dhchap_hashes" },
		[P_GROUPS] = { "dhchap_dhgroups" },
		[P_TLS] = { "tls" },
	};
	struct config *cfg = c->cfg;
	struct port *p, *o;
	const char *str;
	uint8_t bin[16];
	uint64_t v;

	if (check_mapping(c, n, path, "a port") == -1)
		return (-1);
	if ((p = port_new()) == NULL)
		return (fail_oom(c, n, path, NULL));
	TAILQ_INSERT_TAIL(&cfg->ports, p, entry);
	p->cfg_line = n->start_mark.line + 1;
	p->cfg_col = n->start_mark.column + 1;
	if (get_fields(c, n, path, f, P_N) == -1)
		return (-1);

	if (f[P_ID].val != NULL) {
		if (get_uint(c, path, &f[P_ID], 1, UINT16_MAX, &v) == -1)
			return (-1);
		TAILQ_FOREACH(o, &cfg->ports, entry)
			if (o != p && o->id == v)
				return (fail(c, f[P_ID].val, path, "id",
				    "port id %llu is already used by the port "
				    "at line %d", (unsigned long long)v,
				    o->cfg_line));
		p->id = v;
	}
	if (f[P_ADDRESS].val == NULL)
		return (fail(c, n, path, "address", "is required (a numeric "
		    "IPv4 or IPv6 address, 0.0.0.0 or :: for any)"));
	if (get_addr(c, path, &f[P_ADDRESS], p->address, sizeof(p->address),
	    &p->family, bin) == -1)
		return (-1);
	if (f[P_PORT].val != NULL) {
		if (get_uint(c, path, &f[P_PORT], 1, 65535, &v) == -1)
			return (-1);
		snprintf(p->service, sizeof(p->service), "%llu",
		    (unsigned long long)v);
	}
	if (f[P_INLINE].val != NULL) {
		if (get_size(c, path, &f[P_INLINE], &v) == -1)
			return (-1);
		if (v > MAX_INLINE_DATA || v % 16 != 0)
			return (fail(c, f[P_INLINE].val, path, f[P_INLINE].name,
			    "must be a multiple of 16 between 0 and 128K, "
			    "got %s", sval(f[P_INLINE].val)));
		p->inline_data_size = v;
	}
	if (f[P_MAXH2C].val != NULL) {
		if (get_size(c, path, &f[P_MAXH2C], &v) == -1)
			return (-1);
		if (v < MIN_MAXH2CDATA || v > MAX_MAXH2CDATA || v % 4 != 0)
			return (fail(c, f[P_MAXH2C].val, path, f[P_MAXH2C].name,
			    "must be a multiple of 4 between 4K and 16M, "
			    "got %s", sval(f[P_MAXH2C].val)));
		p->maxh2cdata = v;
	}
	if (f[P_QDEPTH].val != NULL) {
		if (get_uint(c, path, &f[P_QDEPTH], MIN_QUEUE_DEPTH,
		    MAX_QUEUE_DEPTH, &v) == -1)
			return (-1);
		p->max_queue_depth = v;
	}
	if (f[P_HDGST].val != NULL &&
	    get_bool(c, path, &f[P_HDGST], &p->header_digest) == -1)
		return (-1);
	if (f[P_DDGST].val != NULL &&
	    get_bool(c, path, &f[P_DDGST], &p->data_digest) == -1)
		return (-1);
	if (f[P_HASHES].val != NULL &&
	    parse_offer(c, path, &f[P_HASHES], false, &p->dhchap) == -1)
		return (-1);
	if (f[P_GROUPS].val != NULL &&
	    parse_offer(c, path, &f[P_GROUPS], true, &p->dhchap) == -1)
		return (-1);
	if (f[P_TLS].val != NULL) {
		if (get_string(c, path, &f[P_TLS], &str) == -1)
			return (-1);
		if (port_tls_parse(str, &p->tls) != 0)
			return (fail(c, f[P_TLS].val, path, "tls", "must be off, "
			    "optional or required, got \"%.40s\"", str));
	}

	TAILQ_FOREACH(o, &cfg->ports, entry) {
		if (o == p)
			break;
		if (addr_overlap(o->family, o->address, o->service,
		    p->family, p->address, p->service))
			return (fail(c, f[P_ADDRESS].val, path, "address",
			    "%s port %s overlaps the port at line %d "
			    "(%s port %s)", p->address, p->service,
			    o->cfg_line, o->address, o->service));
	}
	return (0);
}

static int
parse_ports(struct ctx *c, yaml_node_t *root, const struct field *f)
{
	struct port *p, *o;
	char path[64];
	uint32_t id;
	size_t i;

	if (f->val == NULL)
		return (fail(c, root, "", "ports",
		    "is required: list at least one port to listen on"));
	if (check_list(c, "", f, "ports") == -1)
		return (-1);
	if (list_len(f->val) == 0)
		return (fail(c, f->val, "", "ports",
		    "must list at least one port"));
	for (i = 0; i < list_len(f->val); i++) {
		snprintf(path, sizeof(path), "ports[%zu]", i);
		if (parse_port(c, list_item(c, f->val, i), path) == -1)
			return (-1);
	}

	/* Ports without an id get the lowest unused one, in file order. */
	TAILQ_FOREACH(p, &c->cfg->ports, entry) {
		if (p->id != 0)
			continue;
		for (id = 1; id <= UINT16_MAX; id++) {
			TAILQ_FOREACH(o, &c->cfg->ports, entry)
				if (o->id == id)
					break;
			if (o == NULL)
				break;
		}
		p->id = id;	/* a list of 65536 ports is not realistic */
	}
	return (0);
}

/* ------------------------------------------------------------ namespaces */

/* An explicit identifier must be unique in the file: which is 0 for the
 * UUID, 1 for the NGUID, 2 for the EUI-64.  By hash, as files written by
 * save carry them for every namespace. */
static int
ns_id_clash(struct ctx *c, struct namespace *ns, const char *path,
    const struct field *f, int which)
{
	const uint8_t *id = which == 0 ? ns->uuid : which == 1 ? ns->nguid :
	    ns->eui64;
	size_t len = which == 2 ? 8 : 16;
	struct namespace *o;

	if ((o = hmap_get(&c->ids[which], id, len)) != NULL && o != ns)
		return (fail(c, f->val, path, f->name,
		    "is already used by the namespace at line %d",
		    o->cfg_line));
	if (hmap_put(&c->ids[which], id, len, ns) == -1)
		return (fail_oom(c, f->val, path, f->name));
	return (0);
}

/*
 * The RBD keys, f[0..5]: pool, image, rbd_namespace, ceph_user, keyring,
 * ceph_conf.  Only an rbd namespace has them; pool and image it must have.
 */
static int
parse_rbd(struct ctx *c, struct namespace *ns, const char *path,
    yaml_node_t *n, const struct field *f)
{
	struct rbd_spec *r;
	char **dst[6];
	const char *str;
	size_t i;

	if (ns->type != BACKEND_RBD) {
		for (i = 0; i < nitems(dst); i++)
			if (f[i].val != NULL)
				return (fail(c, f[i].key, path, f[i].name,
				    "is only for an rbd namespace"));
		return (0);
	}
	for (i = 0; i < 2; i++)
		if (f[i].val == NULL)
			return (fail(c, n, path, f[i].name,
			    "is required for an rbd namespace"));
	if ((r = ns->rbd = calloc(1, sizeof(*r))) == NULL)
		return (fail_oom(c, n, path, NULL));
	dst[0] = &r->pool;
	dst[1] = &r->image;
	dst[2] = &r->nspace;
	dst[3] = &r->user;
	dst[4] = &r->keyring;
	dst[5] = &r->conf;
	for (i = 0; i < nitems(dst); i++) {
		if (f[i].val == NULL)
			continue;
		if (get_string(c, path, &f[i], &str) == -1)
			return (-1);
		/* Names Ceph takes: no '/' in a pool or image name (it would
		 * read as a namespace), a file name absolute. */
		if (i < 4 && (strchr(str, '/') != NULL || strlen(str) > 255))
			return (fail(c, f[i].val, path, f[i].name,
			    "must be a name of at most 255 characters without "
			    "'/', got \"%.64s\"", str));
		if (i >= 4 && (str[0] != '/' || strlen(str) >= PATH_MAX))
			return (fail(c, f[i].val, path, f[i].name,
			    "must be an absolute path, got \"%.64s\"", str));
		if (i == 3 && strncmp(str, "client.", 7) == 0)
			return (fail(c, f[i].val, path, f[i].name,
			    "is the cephx id without \"client.\" (\"%.64s\")",
			    str + 7));
		if ((*dst[i] = strdup(str)) == NULL)
			return (fail_oom(c, f[i].val, path, f[i].name));
	}
	return (0);
}

static int
parse_namespace(struct ctx *c, struct subsystem *s, yaml_node_t *n,
    const char *path)
{
	enum { N_NSID, N_BACKEND, N_SIZE, N_BSIZE, N_PATH, N_RO, N_DIRECT,
	    N_POPULATE, N_UUID, N_NGUID, N_EUI64, N_ANA, N_POOL, N_IMAGE,
	    N_RBDNS, N_CEPHUSER, N_KEYRING, N_CEPHCONF, N_N };
	struct field f[N_N] = {
		[N_NSID] = { "nsid" }, [N_BACKEND] = { "backend" },
		[N_SIZE] = { "size" }, [N_BSIZE] = { "block_size" },
		[N_PATH] = { "path" }, [N_RO] = { "readonly" },
		[N_DIRECT] = { "direct" }, [N_POPULATE] = { "populate" },
		[N_UUID] = { "uuid" },
		[N_NGUID] = { "nguid" }, [N_EUI64] = { "eui64" },
		[N_ANA] = { "ana_group" }, [N_POOL] = { "pool" },
		[N_IMAGE] = { "image" }, [N_RBDNS] = { "rbd_namespace" },
		[N_CEPHUSER] = { "ceph_user" }, [N_KEYRING] = { "keyring" },
		[N_CEPHCONF] = { "ceph_conf" },
	};
	struct namespace *ns, *o;
	const char *str;
	uint64_t v;
	size_t i;

	if (check_mapping(c, n, path, "a namespace") == -1)
		return (-1);
	if ((ns = ns_new(s)) == NULL)
		return (fail_oom(c, n, path, NULL));
	TAILQ_INSERT_TAIL(&s->namespaces, ns, entry);
	ns->cfg_line = n->start_mark.line + 1;
	ns->cfg_col = n->start_mark.column + 1;
	if (get_fields(c, n, path, f, N_N) == -1)
		return (-1);

	if (f[N_NSID].val != NULL) {
		if (get_uint(c, path, &f[N_NSID], 1, NVMFD_MAX_NSID, &v) == -1)
			return (-1);
		TAILQ_FOREACH(o, &s->namespaces, entry)
			if (o != ns && o->nsid == v)
				return (fail(c, f[N_NSID].val, path, "nsid",
				    "NSID %llu is already used by the "
				    "namespace at line %d",
				    (unsigned long long)v, o->cfg_line));
		ns->nsid = v;
	}

	if (f[N_BACKEND].val == NULL)
		return (fail(c, n, path, "backend",
		    "is required (ram, file, block or rbd)"));
	if (get_string(c, path, &f[N_BACKEND], &str) == -1)
		return (-1);
	for (i = BACKEND_RAM; i <= BACKEND_RBD; i++)
		if (strcmp(str, backend_type_name(i)) == 0)
			break;
	if (i > BACKEND_RBD)
		return (fail(c, f[N_BACKEND].val, path, "backend",
		    "must be ram, file, block or rbd, got \"%.40s\"", str));
	ns->type = i;
#ifndef HAVE_RBD
	if (ns->type == BACKEND_RBD)
		return (fail(c, f[N_BACKEND].val, path, "backend",
		    "rbd: this nvmfd was built without Ceph RBD support "
		    "(configure --with-rbd, with librbd-dev installed)"));
#endif
	if (parse_rbd(c, ns, path, n, &f[N_POOL]) == -1)
		return (-1);

	if (f[N_BSIZE].val != NULL) {
		if (get_size(c, path, &f[N_BSIZE], &v) == -1)
			return (-1);
		if (v != 512 && v != 4096)
			return (fail(c, f[N_BSIZE].val, path, "block_size",
			    "must be 512 or 4096, got %s",
			    sval(f[N_BSIZE].val)));
		ns->block_size = v;
	} else if (ns->type != BACKEND_BLOCK)
		ns->block_size = DEF_BLOCK_SIZE;

	if (f[N_SIZE].val != NULL) {
		if (ns->type == BACKEND_BLOCK || ns->type == BACKEND_RBD)
			return (fail(c, f[N_SIZE].key, path, "size",
			    "is not allowed for a %s namespace (the "
			    "%s size is used)", backend_type_name(ns->type),
			    ns->type == BACKEND_RBD ? "image's" : "device's"));
		if (get_size(c, path, &f[N_SIZE], &v) == -1)
			return (-1);
		if (v == 0)
			return (fail(c, f[N_SIZE].val, path, "size",
			    "must be greater than 0"));
		if (ns->block_size != 0 && v % ns->block_size != 0)
			return (fail(c, f[N_SIZE].val, path, "size",
			    "must be a multiple of the block size (%u), got %s",
			    ns->block_size, sval(f[N_SIZE].val)));
		ns->size = v;
	} else if (ns->type == BACKEND_RAM)
		return (fail(c, n, path, "size",
		    "is required for a ram namespace (e.g. size: 1G)"));

	if (f[N_PATH].val != NULL) {
		if (ns->type == BACKEND_RAM || ns->type == BACKEND_RBD)
			return (fail(c, f[N_PATH].key, path, "path",
			    "is not allowed for a %s namespace",
			    backend_type_name(ns->type)));
		if (get_string(c, path, &f[N_PATH], &str) == -1)
			return (-1);
		if (str[0] != '/')
			return (fail(c, f[N_PATH].val, path, "path",
			    "must be an absolute path, got \"%.64s\"", str));
		if (strlen(str) >= PATH_MAX)
			return (fail(c, f[N_PATH].val, path, "path",
			    "is too long"));
		if ((ns->path = strdup(str)) == NULL)
			return (fail_oom(c, f[N_PATH].val, path, "path"));
	} else if (ns->type == BACKEND_FILE || ns->type == BACKEND_BLOCK)
		return (fail(c, n, path, "path", "is required for a %s "
		    "namespace", backend_type_name(ns->type)));

	if (f[N_RO].val != NULL &&
	    get_bool(c, path, &f[N_RO], &ns->readonly) == -1)
		return (-1);
	if (f[N_ANA].val != NULL) {
		if (get_uint(c, path, &f[N_ANA], 1, ANA_GRPMAX, &v) == -1)
			return (-1);
		ns->anagrpid = v;
	}
	if (f[N_DIRECT].val != NULL) {
		if (ns->type == BACKEND_RAM || ns->type == BACKEND_RBD)
			return (fail(c, f[N_DIRECT].key, path, "direct",
			    "is not allowed for a %s namespace",
			    backend_type_name(ns->type)));
		if (get_bool(c, path, &f[N_DIRECT], &ns->direct) == -1)
			return (-1);
	}
	if (f[N_POPULATE].val != NULL) {
		if (ns->type != BACKEND_RAM)
			return (fail(c, f[N_POPULATE].key, path, "populate",
			    "is only for a ram namespace"));
		if (get_string(c, path, &f[N_POPULATE], &str) == -1)
			return (-1);
		if (strcmp(str, "background") == 0)
			ns->populate = RAM_POPULATE_BACKGROUND;
		else if (strcmp(str, "lazy") == 0)
			ns->populate = RAM_POPULATE_LAZY;
		else
			return (fail(c, f[N_POPULATE].val, path, "populate",
			    "must be background or lazy, got \"%.40s\"",
			    str));
	}

	/* Explicit IDs must be unique; derived ones are filled in later. */
	if (f[N_UUID].val != NULL) {
		if (get_id(c, path, &f[N_UUID], ns->uuid, 16, false,
		    "a UUID like 0b1d2c3e-4f50-4a6b-8c7d-9e0f1a2b3c4d") == -1)
			return (-1);
		ns->has_uuid = true;
		if (ns_id_clash(c, ns, path, &f[N_UUID], 0) == -1)
			return (-1);
	}
	if (f[N_NGUID].val != NULL) {
		if (get_id(c, path, &f[N_NGUID], ns->nguid, 16, true,
		    "32 hex digits") == -1)
			return (-1);
		ns->has_nguid = true;
		if (ns_id_clash(c, ns, path, &f[N_NGUID], 1) == -1)
			return (-1);
	}
	if (f[N_EUI64].val != NULL) {
		if (get_id(c, path, &f[N_EUI64], ns->eui64, 8, true,
		    "16 hex digits") == -1)
			return (-1);
		ns->has_eui64 = true;
		if (ns_id_clash(c, ns, path, &f[N_EUI64], 2) == -1)
			return (-1);
	}
	return (0);
}

/* Give namespaces without an NSID the lowest free ones, then sort. */
static int
number_namespaces(struct ctx *c, struct subsystem *s, const char *path,
    yaml_node_t *list)
{
	struct namespace_list sorted;
	struct namespace *ns, *o;
	bool used[NVMFD_MAX_NSID + 1] = { false };
	uint32_t next = 1;

	TAILQ_FOREACH(ns, &s->namespaces, entry)
		used[ns->nsid] = true;
	TAILQ_FOREACH(ns, &s->namespaces, entry) {
		if (ns->nsid != 0)
			continue;
		while (next <= NVMFD_MAX_NSID && used[next])
			next++;
		if (next > NVMFD_MAX_NSID)
			return (fail(c, list, path, "namespaces",
			    "more than %d namespaces", NVMFD_MAX_NSID));
		ns->nsid = next;
		used[next] = true;
	}

	TAILQ_INIT(&sorted);
	while ((ns = TAILQ_FIRST(&s->namespaces)) != NULL) {
		TAILQ_REMOVE(&s->namespaces, ns, entry);
		TAILQ_FOREACH(o, &sorted, entry)
			if (o->nsid > ns->nsid)
				break;
		if (o != NULL)
			TAILQ_INSERT_BEFORE(o, ns, entry);
		else
			TAILQ_INSERT_TAIL(&sorted, ns, entry);
	}
	TAILQ_CONCAT(&s->namespaces, &sorted, entry);
	return (0);
}

/* ------------------------------------------------------------ subsystems */

static int
check_nqn(struct ctx *c, yaml_node_t *v, const char *path, const char *key,
    const char *nqn)
{
	if (strlen(nqn) > NVMFD_NQN_MAX)
		return (fail(c, v, path, key, "is longer than %d characters",
		    NVMFD_NQN_MAX));
	if (!nqn_valid(nqn))
		return (fail(c, v, path, key, "\"%.64s\" is not a valid NQN "
		    "(expected nqn.yyyy-mm.reverse.domain:name or "
		    "nqn.2014-08.org.nvmexpress:uuid:<uuid>)", nqn));
	return (0);
}

/* One allowed host: its NQN, or a mapping with the NQN and its keys
 * (DH-HMAC-CHAP secrets, TLS PSK). */
/* from: one prefix or a list of them. */
static int
parse_from(struct ctx *c, const char *ipath, const struct field *f,
    struct host *h)
{
	yaml_node_t *n = f->val;
	size_t cnt = n->type == YAML_SEQUENCE_NODE ? list_len(n) : 1;
	char d[64];

	if (n->type != YAML_SCALAR_NODE && n->type != YAML_SEQUENCE_NODE)
		return (fail(c, n, ipath, "from", "must be an address prefix "
		    "or a list of them, got %s", describe(n, d, sizeof(d))));
	if (cnt == 0 || cnt > MAX_HOST_PREFIXES)
		return (fail(c, n, ipath, "from", "must list 1 to %d "
		    "prefixes", MAX_HOST_PREFIXES));
	if ((h->from = calloc(cnt, sizeof(*h->from))) == NULL)
		return (fail_oom(c, n, ipath, "from"));
	for (size_t i = 0; i < cnt; i++) {
		struct field item = { .name = "from", .val = n };
		const char *v;

		if (n->type == YAML_SEQUENCE_NODE)
			item.val = list_item(c, n, i);
		if (get_string(c, ipath, &item, &v) == -1)
			return (-1);
		if (prefix_parse(v, &h->from[i]) != 0)
			return (fail(c, item.val, ipath, "from", "must be a "
			    "numeric address or prefix like 10.0.0.0/8 or "
			    "fd00::/8 (no host bits past the length), got "
			    "\"%.64s\"", v));
		h->nfrom++;
	}
	return (0);
}

static int
parse_host(struct ctx *c, struct host_list *list, const char *ipath,
    yaml_node_t *n)
{
	enum { H_NQN, H_SECRET, H_CTRL, H_TLS_KEY, H_TLS_KDF, H_FROM, H_N };
	struct field f[H_N] = {
		[H_NQN] = { "nqn" }, [H_SECRET] = { "dhchap_secret" },
		[H_CTRL] = { "dhchap_ctrl_secret" },
		[H_TLS_KEY] = { "tls_key" }, [H_TLS_KDF] = { "tls_kdf" },
		[H_FROM] = { "from" },
	};
	struct field item = { .name = "", .val = n };
	struct host *h;
	const char *nqn, *key = NULL, *kdf = NULL;
	char d[64], err[300];

	if (n->type == YAML_MAPPING_NODE) {
		if (get_fields(c, n, ipath, f, H_N) == -1)
			return (-1);
		if (f[H_NQN].val == NULL)
			return (fail(c, n, ipath, "nqn", "is required"));
		item = f[H_NQN];
		if ((f[H_TLS_KEY].val != NULL && get_string(c, ipath,
		    &f[H_TLS_KEY], &key) == -1) || (f[H_TLS_KDF].val != NULL &&
		    get_string(c, ipath, &f[H_TLS_KDF], &kdf) == -1))
			return (-1);
		if (kdf != NULL && key == NULL)
			return (fail(c, f[H_TLS_KDF].val, ipath, "tls_kdf",
			    "needs a tls_key"));
	} else if (n->type != YAML_SCALAR_NODE || is_null(n))
		return (fail(c, n, ipath, NULL, "must be a host NQN or a "
		    "mapping with nqn and its keys, got %s",
		    describe(n, d, sizeof(d))));
	if (get_string(c, ipath, &item, &nqn) == -1 ||
	    check_nqn(c, item.val, ipath, item.name, nqn) == -1)
		return (-1);
	if (host_list_find(list, nqn) != NULL)
		return (fail(c, item.val, ipath, item.name,
		    "host NQN is listed twice"));
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return (fail_oom(c, item.val, ipath, NULL));
	snprintf(h->nqn, sizeof(h->nqn), "%s", nqn);
	TAILQ_INSERT_TAIL(list, h, entry);
	if (f[H_CTRL].val != NULL && f[H_SECRET].val == NULL)
		return (fail(c, f[H_CTRL].key, ipath, "dhchap_ctrl_secret",
		    "needs dhchap_secret too (the host authenticates first)"));
	if (f[H_SECRET].val != NULL && get_secret(c, ipath, &f[H_SECRET],
	    &h->dhchap_secret, &h->key) == -1)
		return (-1);
	if (f[H_CTRL].val != NULL && get_secret(c, ipath, &f[H_CTRL],
	    &h->dhchap_ctrl_secret, &h->ctrl_key) == -1)
		return (-1);
	if (key != NULL &&
	    (h->tls = host_tls_load(key, kdf, err, sizeof(err))) == NULL)
		return (fail(c, f[H_TLS_KEY].val, ipath, "tls_key", "%s", err));
	if (f[H_FROM].val != NULL)
		return (parse_from(c, ipath, &f[H_FROM], h));
	return (0);
}

static int
parse_hosts(struct ctx *c, struct subsystem *s, const char *path,
    const struct field *f)
{
	char ipath[96], d[64];
	size_t i;

	if (f->val->type == YAML_SCALAR_NODE && strcmp(sval(f->val), "any") == 0)
		return (0);
	if (f->val->type != YAML_SEQUENCE_NODE)
		return (fail(c, f->val, path, f->name, "must be \"any\" or a "
		    "list of host NQNs, got %s", describe(f->val, d,
		    sizeof(d))));
	s->allow_any_host = false;
	for (i = 0; i < list_len(f->val); i++) {
		snprintf(ipath, sizeof(ipath), "%s.hosts[%zu]", path, i);
		if (parse_host(c, &s->hosts, ipath,
		    list_item(c, f->val, i)) == -1)
			return (-1);
	}
	return (0);
}

static int
parse_subsys_ports(struct ctx *c, struct subsystem *s, const char *path,
    const struct field *f)
{
	struct field item = { .name = "" };
	char ipath[96];
	uint64_t v;
	size_t i, j, n;

	if (check_list(c, path, f, "port ids") == -1)
		return (-1);
	if ((n = list_len(f->val)) == 0)
		return (fail(c, f->val, path, f->name, "must name at least one "
		    "port id (leave ports out to use every port)"));
	if ((s->port_ids = calloc(n, sizeof(*s->port_ids))) == NULL)
		return (fail_oom(c, f->val, path, f->name));
	for (i = 0; i < n; i++) {
		snprintf(ipath, sizeof(ipath), "%s.ports[%zu]", path, i);
		item.val = list_item(c, f->val, i);
		/* item.name "" keeps the key at ipath */
		if (get_uint(c, ipath, &item, 1, UINT16_MAX, &v) == -1)
			return (-1);
		if (port_find(c->cfg, v) == NULL)
			return (fail(c, item.val, ipath, NULL,
			    "no port with id %llu is defined",
			    (unsigned long long)v));
		for (j = 0; j < s->nport_ids; j++)
			if (s->port_ids[j] == v)
				return (fail(c, item.val, ipath, NULL,
				    "port id %llu is listed twice",
				    (unsigned long long)v));
		s->port_ids[s->nport_ids++] = v;
	}
	return (0);
}

/* cntlid_min and cntlid_max inside 1..0xffef; an absent one keeps its
 * value. */
static int
get_cntlid_range(struct ctx *c, const char *path, const struct field *fmin,
    const struct field *fmax, uint16_t *min, uint16_t *max)
{
	const struct field *at = fmax->val ? fmax : fmin;
	uint64_t lo = *min, hi = *max;

	if ((fmin->val != NULL &&
	    get_uint(c, path, fmin, 1, NVMF_CNTLID_MAX, &lo) == -1) ||
	    (fmax->val != NULL &&
	    get_uint(c, path, fmax, 1, NVMF_CNTLID_MAX, &hi) == -1))
		return (-1);
	if (hi < lo)
		return (fail(c, at->val, path, at->name, "cntlid_max (%llu) "
		    "is below cntlid_min (%llu)", (unsigned long long)hi,
		    (unsigned long long)lo));
	*min = lo;
	*max = hi;
	return (0);
}

/* ana: [{group, port, state}]: a group's state on one port (port id). */
static int
parse_ana(struct ctx *c, struct subsystem *s, const char *path,
    const struct field *list)
{
	enum { A_GROUP, A_PORT, A_STATE, A_N };
	char ipath[128];
	const char *str;
	uint64_t grp, pid;
	uint8_t st;

	if (check_list(c, path, list, "ANA states") == -1)
		return (-1);
	for (size_t i = 0; i < list_len(list->val); i++) {
		struct field f[A_N] = {
			[A_GROUP] = { "group" }, [A_PORT] = { "port" },
			[A_STATE] = { "state" },
		};
		yaml_node_t *n = list_item(c, list->val, i);

		snprintf(ipath, sizeof(ipath), "%s.ana[%zu]", path, i);
		if (check_mapping(c, n, ipath, "an ANA state") == -1 ||
		    get_fields(c, n, ipath, f, A_N) == -1)
			return (-1);
		for (int k = 0; k < A_N; k++)
			if (f[k].val == NULL)
				return (fail(c, n, ipath, f[k].name,
				    "is required"));
		if (get_uint(c, ipath, &f[A_GROUP], 1, ANA_GRPMAX, &grp) == -1 ||
		    get_uint(c, ipath, &f[A_PORT], 1, UINT16_MAX, &pid) == -1 ||
		    get_string(c, ipath, &f[A_STATE], &str) == -1)
			return (-1);
		if (port_find(c->cfg, pid) == NULL)
			return (fail(c, f[A_PORT].val, ipath, "port",
			    "no port with id %llu is defined",
			    (unsigned long long)pid));
		if (ana_state_parse(str, &st) == -1)
			return (fail(c, f[A_STATE].val, ipath, "state",
			    "must be optimized, non-optimized, inaccessible, "
			    "persistent-loss or change, got \"%.40s\"", str));
		if (ana_state(&s->ana, grp, pid) != ANA_OPTIMIZED)
			return (fail(c, f[A_GROUP].val, ipath, "group",
			    "group %llu on port %llu is listed twice",
			    (unsigned long long)grp, (unsigned long long)pid));
		if (ana_set(&s->ana, grp, pid, st) == -1)
			return (fail(c, f[A_PORT].val, ipath, "port",
			    "ANA states on more than %d ports", ANA_PORTS));
	}
	return (0);
}

static int
parse_subsystem(struct ctx *c, yaml_node_t *n, const char *path)
{
	enum { S_NQN, S_SERIAL, S_MODEL, S_HOSTS, S_PORTS, S_MAXIOQ, S_NS,
	    S_HASHES, S_GROUPS, S_ANA, S_CMIN, S_CMAX, S_N };
	struct field f[S_N] = {
		[S_NQN] = { "nqn" }, [S_SERIAL] = { "serial" },
		[S_MODEL] = { "model" }, [S_HOSTS] = { "hosts" },
		[S_PORTS] = { "ports" }, [S_MAXIOQ] = { "max_io_queues" },
		[S_NS] = { "namespaces" }, [S_HASHES] = { "dhchap_hashes" },
		[S_GROUPS] = { "dhchap_dhgroups" }, [S_ANA] = { "ana" },
		[S_CMIN] = { "cntlid_min" }, [S_CMAX] = { "cntlid_max" },
	};
	struct subsystem *s, *o;
	const char *str;
	char npath[128];
	uint64_t v;
	size_t i;

	if (check_mapping(c, n, path, "a subsystem") == -1)
		return (-1);
	if ((s = subsys_new()) == NULL)
		return (fail_oom(c, n, path, NULL));
	TAILQ_INSERT_TAIL(&c->cfg->subsystems, s, entry);
	s->cfg_line = n->start_mark.line + 1;
	s->cfg_col = n->start_mark.column + 1;
	if (get_fields(c, n, path, f, S_N) == -1)
		return (-1);

	if (f[S_NQN].val == NULL)
		return (fail(c, n, path, "nqn", "is required"));
	if (get_string(c, path, &f[S_NQN], &str) == -1)
		return (-1);
	if (check_nqn(c, f[S_NQN].val, path, "nqn", str) == -1)
		return (-1);
	if (strcmp(str, NVMF_DISCOVERY_NQN) == 0)
		return (fail(c, f[S_NQN].val, path, "nqn",
		    "is reserved for the discovery subsystem"));
	if ((o = subsystem_find(c->cfg, str)) != NULL)
		return (fail(c, f[S_NQN].val, path, "nqn",
		    "duplicate NQN, already used by the subsystem at "
		    "line %d", o->cfg_line));
	snprintf(s->nqn, sizeof(s->nqn), "%s", str);
	/* Already on the list (so a failure frees it); now in the index. */
	if (hmap_put(&c->cfg->subsys_by_nqn, s->nqn, strlen(s->nqn), s) == -1)
		return (fail_oom(c, n, path, NULL));

	if (f[S_SERIAL].val != NULL) {
		if (get_string(c, path, &f[S_SERIAL], &str) == -1)
			return (-1);
		if (strlen(str) > SERIAL_MAX)
			return (fail(c, f[S_SERIAL].val, path, "serial",
			    "is longer than %d characters", SERIAL_MAX));
		for (i = 0; str[i] != '\0'; i++)
			if (str[i] < 0x20 || str[i] > 0x7e)
				return (fail(c, f[S_SERIAL].val, path,
				    "serial", "must be printable ASCII"));
		snprintf(s->serial, sizeof(s->serial), "%s", str);
	}
	if (f[S_MODEL].val != NULL) {
		if (get_string(c, path, &f[S_MODEL], &str) == -1)
			return (-1);
		if (strlen(str) > MODEL_MAX)
			return (fail(c, f[S_MODEL].val, path, "model",
			    "is longer than %d characters", MODEL_MAX));
		for (i = 0; str[i] != '\0'; i++)
			if (str[i] < 0x20 || str[i] > 0x7e)
				return (fail(c, f[S_MODEL].val, path,
				    "model", "must be printable ASCII"));
		snprintf(s->model, sizeof(s->model), "%s", str);
	}
	if (f[S_HOSTS].val != NULL &&
	    parse_hosts(c, s, path, &f[S_HOSTS]) == -1)
		return (-1);
	if (f[S_PORTS].val != NULL &&
	    parse_subsys_ports(c, s, path, &f[S_PORTS]) == -1)
		return (-1);
	if (f[S_HASHES].val != NULL &&
	    parse_offer(c, path, &f[S_HASHES], false, &s->dhchap) == -1)
		return (-1);
	if (f[S_GROUPS].val != NULL &&
	    parse_offer(c, path, &f[S_GROUPS], true, &s->dhchap) == -1)
		return (-1);
	if (f[S_MAXIOQ].val != NULL) {
		if (get_uint(c, path, &f[S_MAXIOQ], 1, MAX_IO_QUEUES, &v) == -1)
			return (-1);
		s->max_io_queues = v;
	}
	if ((f[S_CMIN].val != NULL) != (f[S_CMAX].val != NULL))
		return (fail(c, n, path, f[S_CMIN].val ? "cntlid_max" :
		    "cntlid_min", "is required with %s", f[S_CMIN].val ?
		    "cntlid_min" : "cntlid_max"));
	if (f[S_CMIN].val != NULL && get_cntlid_range(c, path, &f[S_CMIN],
	    &f[S_CMAX], &s->cntlid_min, &s->cntlid_max) == -1)
		return (-1);
	if (f[S_ANA].val != NULL && parse_ana(c, s, path, &f[S_ANA]) == -1)
		return (-1);
	if (f[S_NS].val != NULL) {
		if (check_list(c, path, &f[S_NS], "namespaces") == -1)
			return (-1);
		for (i = 0; i < list_len(f[S_NS].val); i++) {
			snprintf(npath, sizeof(npath), "%s.namespaces[%zu]",
			    path, i);
			if (parse_namespace(c, s, list_item(c, f[S_NS].val, i),
			    npath) == -1)
				return (-1);
		}
		if (number_namespaces(c, s, path, f[S_NS].val) == -1)
			return (-1);
	}
	return (0);
}

/* ------------------------------------------------------------- discovery */

/* discovery: who may use the discovery controller, and with which keys. */
static int
parse_discovery(struct ctx *c, yaml_node_t *n)
{
	enum { D_ANY, D_HOSTS, D_HASHES, D_GROUPS, D_N };
	struct field f[D_N] = {
		[D_ANY] = { "allow_any_host" }, [D_HOSTS] = { "hosts" },
		[D_HASHES] = { "dhchap_hashes" },
		[D_GROUPS] = { "dhchap_dhgroups" },
	};
	struct discovery_access *d = &c->cfg->discovery;
	yaml_node_t *hosts;
	char ipath[64], desc[64];

	if (check_mapping(c, n, "discovery", "the discovery settings") == -1 ||
	    get_fields(c, n, "discovery", f, D_N) == -1)
		return (-1);
	if (f[D_ANY].val != NULL && get_bool(c, "discovery", &f[D_ANY],
	    &d->allow_any_host) == -1)
		return (-1);
	if ((hosts = f[D_HOSTS].val) != NULL) {
		/* Unlike a subsystem's, this list does not shut others out:
		 * allow_any_host does. */
		if (hosts->type != YAML_SEQUENCE_NODE)
			return (fail(c, hosts, "discovery", "hosts", "must be "
			    "a list of hosts (whether others may discover is "
			    "allow_any_host), got %s", describe(hosts, desc,
			    sizeof(desc))));
		for (size_t i = 0; i < list_len(hosts); i++) {
			snprintf(ipath, sizeof(ipath), "discovery.hosts[%zu]",
			    i);
			if (parse_host(c, &d->hosts, ipath,
			    list_item(c, hosts, i)) == -1)
				return (-1);
		}
	}
	if (f[D_HASHES].val != NULL && parse_offer(c, "discovery",
	    &f[D_HASHES], false, &d->dhchap) == -1)
		return (-1);
	if (f[D_GROUPS].val != NULL && parse_offer(c, "discovery",
	    &f[D_GROUPS], true, &d->dhchap) == -1)
		return (-1);
	return (0);
}

/* ------------------------------------------------------------- referrals */

static int
parse_referral(struct ctx *c, yaml_node_t *n, const char *path)
{
	enum { F_ADDRESS, F_PORT, F_PORTID, F_N };
	struct field f[F_N] = {
		[F_ADDRESS] = { "address" }, [F_PORT] = { "port" },
		[F_PORTID] = { "port_id" },
	};
	struct referral *r, *o;
	uint8_t bin[16], obin[16];
	uint64_t v;

	if (check_mapping(c, n, path, "a referral") == -1)
		return (-1);
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return (fail_oom(c, n, path, NULL));
	TAILQ_INSERT_TAIL(&c->cfg->referrals, r, entry);
	snprintf(r->service, sizeof(r->service), "%d", DEF_DISCOVERY_PORT);
	r->port_id = 1;
	if (get_fields(c, n, path, f, F_N) == -1)
		return (-1);

	if (f[F_ADDRESS].val == NULL)
		return (fail(c, n, path, "address", "is required"));
	if (get_addr(c, path, &f[F_ADDRESS], r->address, sizeof(r->address),
	    &r->family, bin) == -1)
		return (-1);
	if (all_zero(bin, 16))
		return (fail(c, f[F_ADDRESS].val, path, "address",
		    "must be a specific address, not a wildcard"));
	if (f[F_PORT].val != NULL) {
		if (get_uint(c, path, &f[F_PORT], 1, 65535, &v) == -1)
			return (-1);
		snprintf(r->service, sizeof(r->service), "%llu",
		    (unsigned long long)v);
	}
	if (f[F_PORTID].val != NULL) {
		if (get_uint(c, path, &f[F_PORTID], 0, UINT16_MAX, &v) == -1)
			return (-1);
		r->port_id = v;
	}
	TAILQ_FOREACH(o, &c->cfg->referrals, entry) {
		if (o == r)
			break;
		parse_addr(o->address, obin);
		if (o->family == r->family && memcmp(obin, bin, 16) == 0 &&
		    strcmp(o->service, r->service) == 0)
			return (fail(c, f[F_ADDRESS].val, path, "address",
			    "duplicate referral to %s port %s", r->address,
			    r->service));
	}
	return (0);
}

/* ------------------------------------------------------------------ host */

/* host.connections[i]: the settings nvmfctl connect takes, by name. */
static int
parse_host_conn(struct ctx *c, yaml_node_t *n, const char *path)
{
	struct host_params *p;
	yaml_node_pair_t *pair;
	char err[256];

	if (check_mapping(c, n, path, "a connection") == -1)
		return (-1);
	p = &c->cfg->host_conns[c->cfg->nhost_conns++];
	host_params_default(p);
	for (pair = n->data.mapping.pairs.start;
	    pair < n->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = node(c, pair->key), *v = node(c, pair->value);

		if (k == NULL || k->type != YAML_SCALAR_NODE || v == NULL ||
		    v->type != YAML_SCALAR_NODE)
			return (fail(c, k ? k : n, path, NULL,
			    "keys and values must be plain words"));
		if (host_param_set(p, sval(k), sval(v), err, sizeof(err)) != 0)
			return (fail(c, v, path, sval(k), "%s", err));
	}
	if (host_params_check(p, err, sizeof(err)) != 0)
		return (fail(c, n, path, NULL, "%s", err));
	if (p->nbd_tls_required && c->cfg->nbd_tls == PORT_TLS_OFF)
		return (fail(c, n, path, "nbd_tls", "required needs TLS on the "
		    "NBD server (host.nbd.tls: optional or required)"));
	return (0);
}

/* host: the NBD listeners and the connections made at start. */
static int
parse_host_role(struct ctx *c, yaml_node_t *n)
{
	enum { H_NBD, H_CONNS, H_N };
	enum { N_SOCKET, N_ADDRESS, N_PORT, N_TLS, N_PSK, N_N };
	struct field f[H_N] = {
		[H_NBD] = { "nbd" }, [H_CONNS] = { "connections" },
	};
	struct field nf[N_N] = {
		[N_SOCKET] = { "socket" }, [N_ADDRESS] = { "address" },
		[N_PORT] = { "port" }, [N_TLS] = { "tls" },
		[N_PSK] = { "tls_psk_file" },
	};
	char **dst[N_N] = {
		[N_SOCKET] = &c->cfg->nbd_socket,
		[N_ADDRESS] = &c->cfg->nbd_address,
		[N_PORT] = &c->cfg->nbd_port,
		[N_TLS] = NULL,
		[N_PSK] = &c->cfg->nbd_tls_psk_file,
	};
	char path[64];
	const char *v;
	uint8_t bin[16];
	uint64_t u;

	if (check_mapping(c, n, "host", "the host settings") == -1 ||
	    get_fields(c, n, "host", f, H_N) == -1)
		return (-1);
	if (f[H_NBD].val != NULL) {
		if (check_mapping(c, f[H_NBD].val, "host.nbd",
		    "the NBD listeners") == -1 ||
		    get_fields(c, f[H_NBD].val, "host.nbd", nf, N_N) == -1)
			return (-1);
		for (int i = 0; i < N_N; i++) {
			if (nf[i].val == NULL)
				continue;
			if (i == N_PORT) {
				if (get_uint(c, "host.nbd", &nf[i], 1, 65535,
				    &u) == -1)
					return (-1);
			} else if (get_string(c, "host.nbd", &nf[i], &v) == -1)
				return (-1);
			if (i == N_SOCKET && v[0] != '/')
				return (fail(c, nf[i].val, "host.nbd", "socket",
				    "must be an absolute path"));
			if (i == N_ADDRESS && parse_addr(v, bin) < 0)
				return (fail(c, nf[i].val, "host.nbd",
				    "address", "must be a numeric address"));
			if (i == N_PSK && v[0] != '/')
				return (fail(c, nf[i].val, "host.nbd",
				    "tls_psk_file", "must be an absolute path"));
			if (i == N_TLS) {
				if (port_tls_parse(v, &c->cfg->nbd_tls) != 0)
					return (fail(c, nf[i].val, "host.nbd",
					    "tls", "must be off, optional or "
					    "required, got \"%.32s\"", v));
				continue;
			}
			if ((*dst[i] = strdup(sval(nf[i].val))) == NULL)
				return (fail_oom(c, nf[i].val, "host.nbd",
				    nf[i].name));
		}
		if (c->cfg->nbd_tls != PORT_TLS_OFF &&
		    c->cfg->nbd_tls_psk_file == NULL)
			return (fail(c, f[H_NBD].val, "host.nbd", "tls",
			    "%s needs a tls_psk_file (identity:hexkey lines)",
			    port_tls_name(c->cfg->nbd_tls)));
	}
	if (f[H_CONNS].val != NULL) {
		size_t len;

		if (check_list(c, "host", &f[H_CONNS], "connections") == -1)
			return (-1);
		len = list_len(f[H_CONNS].val);
		if ((c->cfg->host_conns = calloc(len + 1,
		    sizeof(*c->cfg->host_conns))) == NULL)
			return (fail_oom(c, f[H_CONNS].val, "host",
			    "connections"));
		for (size_t i = 0; i < len; i++) {
			snprintf(path, sizeof(path), "host.connections[%zu]", i);
			if (parse_host_conn(c, list_item(c, f[H_CONNS].val, i),
			    path) == -1)
				return (-1);
		}
	}
	return (0);
}

/* ------------------------------------------------------------------ root */

/* A group id that fits a gid_t, or a group name that exists. */
static bool
group_known(const char *g)
{
	const char *s = g;
	uint64_t v;

	if (parse_u64(&s, &v) == 0 && *s == '\0')
		return (v < (gid_t)-1);
	return (getgrnam(g) != NULL);
}

/* control: the Unix sockets nvmfctl talks to. */
static int
parse_control(struct ctx *c, yaml_node_t *n)
{
	enum { C_SOCKET, C_GROUP, C_RO, C_N };
	struct field f[C_N] = {
		[C_SOCKET] = { "socket" }, [C_GROUP] = { "group" },
		[C_RO] = { "readonly_socket" },
	};
	char **dst[C_N] = {
		[C_SOCKET] = &c->cfg->ctl_socket,
		[C_GROUP] = &c->cfg->ctl_group,
		[C_RO] = &c->cfg->ctl_ro_socket,
	};
	const char *v;
	struct sockaddr_un sun;

	if (check_mapping(c, n, "control", "the control settings") == -1 ||
	    get_fields(c, n, "control", f, C_N) == -1)
		return (-1);
	for (int i = 0; i < C_N; i++) {
		if (f[i].val == NULL)
			continue;
		if (get_string(c, "control", &f[i], &v) == -1)
			return (-1);
		/* control_start() takes the same: a number, or a name the
		 * group database knows. */
		if (i == C_GROUP && !group_known(v))
			return (fail(c, f[i].val, "control", f[i].name,
			    "no such group \"%.64s\"", v));
		if (i != C_GROUP && v[0] != '/')
			return (fail(c, f[i].val, "control", f[i].name,
			    "must be an absolute path, got \"%.64s\"", v));
		if (i != C_GROUP && strlen(v) >= sizeof(sun.sun_path))
			return (fail(c, f[i].val, "control", f[i].name,
			    "is longer than a socket path may be (%zu)",
			    sizeof(sun.sun_path) - 1));
		if ((*dst[i] = strdup(v)) == NULL)
			return (fail_oom(c, f[i].val, "control", f[i].name));
	}
	return (0);
}

/* metrics: the Prometheus listener, loopback unless told otherwise. */
static int
parse_metrics(struct ctx *c, yaml_node_t *n)
{
	enum { M_ADDRESS, M_PORT, M_N };
	struct field f[M_N] = {
		[M_ADDRESS] = { "address" }, [M_PORT] = { "port" },
	};
	struct config *cfg = c->cfg;
	uint8_t bin[16];
	uint64_t v;
	int family;

	if (check_mapping(c, n, "metrics", "the metrics settings") == -1 ||
	    get_fields(c, n, "metrics", f, M_N) == -1)
		return (-1);
	if (f[M_PORT].val == NULL)
		return (fail(c, n, "metrics", "port", "is required (the HTTP "
		    "port Prometheus scrapes, e.g. 9720)"));
	if (get_uint(c, "metrics", &f[M_PORT], 1, 65535, &v) == -1)
		return (-1);
	cfg->metrics_port = v;
	if (f[M_ADDRESS].val != NULL)
		return (get_addr(c, "metrics", &f[M_ADDRESS],
		    cfg->metrics_address, sizeof(cfg->metrics_address), &family,
		    bin));
	snprintf(cfg->metrics_address, sizeof(cfg->metrics_address),
	    "127.0.0.1");
	return (0);
}

static int
parse_root(struct ctx *c, yaml_node_t *root)
{
	enum { R_WORKERS, R_POLL, R_MDTS, R_MAXCTRL, R_MAXDISC, R_MAXCONN,
	    R_PORTS, R_SUBSYS, R_REFERRALS, R_CONTROL, R_HOST, R_METRICS,
	    R_STATE, R_CMIN, R_CMAX, R_DISC, R_N };
	struct field f[R_N] = {
		[R_WORKERS] = { "workers" }, [R_POLL] = { "poll_us" },
		[R_MDTS] = { "mdts" },
		[R_MAXCTRL] = { "max_controllers" },
		[R_MAXDISC] = { "max_discovery_controllers" },
		[R_MAXCONN] = { "max_connections" },
		[R_PORTS] = { "ports" }, [R_SUBSYS] = { "subsystems" },
		[R_REFERRALS] = { "referrals" }, [R_CONTROL] = { "control" },
		[R_HOST] = { "host" }, [R_METRICS] = { "metrics" },
		[R_STATE] = { "state_dir" },
		[R_CMIN] = { "cntlid_min" }, [R_CMAX] = { "cntlid_max" },
		[R_DISC] = { "discovery" },
	};
	struct config *cfg = c->cfg;
	char path[64], d[64];
	uint64_t v;
	size_t i;

	if (root->type != YAML_MAPPING_NODE)
		return (fail(c, root, "", NULL, "the configuration must be a "
		    "mapping of keys to values, got %s",
		    describe(root, d, sizeof(d))));
	if (get_fields(c, root, "", f, R_N) == -1)
		return (-1);

	if (f[R_WORKERS].val != NULL) {
		if (get_uint(c, "", &f[R_WORKERS], 0, MAX_WORKERS, &v) == -1)
			return (-1);
		cfg->workers = v;
	}
	if (f[R_POLL].val != NULL) {
		if (get_uint(c, "", &f[R_POLL], 0, MAX_POLL_US, &v) == -1)
			return (-1);
		cfg->poll_us = v;
	}
	if (f[R_MDTS].val != NULL) {
		if (get_size(c, "", &f[R_MDTS], &v) == -1)
			return (-1);
		if (v < MIN_MDTS || v > MAX_MDTS || (v & (v - 1)) != 0)
			return (fail(c, f[R_MDTS].val, "", "mdts",
			    "must be a power of two between 4K and 16M, got %s",
			    sval(f[R_MDTS].val)));
		cfg->mdts = v;
	}
	if (f[R_MAXCTRL].val != NULL) {
		if (get_uint(c, "", &f[R_MAXCTRL], 1, MAX_CONTROLLERS,
		    &v) == -1)
			return (-1);
		cfg->max_controllers = v;
	}
	if (f[R_MAXDISC].val != NULL) {
		if (get_uint(c, "", &f[R_MAXDISC], 1, MAX_CONTROLLERS,
		    &v) == -1)
			return (-1);
		cfg->max_disc_controllers = v;
	}
	if (f[R_MAXCONN].val != NULL) {
		if (get_uint(c, "", &f[R_MAXCONN], 1, MAX_CONNECTIONS,
		    &v) == -1)
			return (-1);
		cfg->max_connections = v;
	}
	if (f[R_STATE].val != NULL) {
		const char *dir;

		if (get_string(c, "", &f[R_STATE], &dir) == -1)
			return (-1);
		if (dir[0] != '/' || strlen(dir) > 1024)
			return (fail(c, f[R_STATE].val, "", "state_dir",
			    "must be an absolute path of at most 1024 "
			    "characters, got \"%.64s\"", dir));
		if ((cfg->state_dir = strdup(dir)) == NULL)
			return (fail_oom(c, f[R_STATE].val, "", "state_dir"));
	}
	if (get_cntlid_range(c, "", &f[R_CMIN], &f[R_CMAX], &cfg->cntlid_min,
	    &cfg->cntlid_max) == -1)
		return (-1);
	if (f[R_CONTROL].val != NULL &&
	    parse_control(c, f[R_CONTROL].val) == -1)
		return (-1);
	if (f[R_HOST].val != NULL && parse_host_role(c, f[R_HOST].val) == -1)
		return (-1);
	if (f[R_METRICS].val != NULL &&
	    parse_metrics(c, f[R_METRICS].val) == -1)
		return (-1);
	/* Ports first: subsystems refer to them by id. */
	if (parse_ports(c, root, &f[R_PORTS]) == -1)
		return (-1);
	if (f[R_SUBSYS].val != NULL) {
		if (check_list(c, "", &f[R_SUBSYS], "subsystems") == -1)
			return (-1);
		for (i = 0; i < list_len(f[R_SUBSYS].val); i++) {
			snprintf(path, sizeof(path), "subsystems[%zu]", i);
			if (parse_subsystem(c, list_item(c, f[R_SUBSYS].val, i),
			    path) == -1)
				return (-1);
		}
	}
	if (f[R_DISC].val != NULL && parse_discovery(c, f[R_DISC].val) == -1)
		return (-1);
	if (f[R_REFERRALS].val != NULL) {
		if (check_list(c, "", &f[R_REFERRALS], "referrals") == -1)
			return (-1);
		for (i = 0; i < list_len(f[R_REFERRALS].val); i++) {
			snprintf(path, sizeof(path), "referrals[%zu]", i);
			if (parse_referral(c, list_item(c,
			    f[R_REFERRALS].val, i), path) == -1)
				return (-1);
		}
	}
	config_finish(cfg);
	return (0);
}

/* ---------------------------------------------------------------- public */

struct config *
config_default(void)
{
	struct config *cfg;
	struct port *p;
	struct subsystem *s;
	struct namespace *ns;

	if ((cfg = config_new()) == NULL)
		return (NULL);
	if ((p = port_new()) == NULL)
		goto fail;
	TAILQ_INSERT_TAIL(&cfg->ports, p, entry);
	p->id = 1;
	snprintf(p->address, sizeof(p->address), "127.0.0.1");
	p->family = AF_INET;

	if ((s = subsys_new()) == NULL)
		goto fail;
	snprintf(s->nqn, sizeof(s->nqn), "%s", NVMFD_DEFAULT_NQN);
	if (subsystem_link(cfg, s) == -1) {
		free(s);
		goto fail;
	}

	if ((ns = ns_new(s)) == NULL)
		goto fail;
	TAILQ_INSERT_TAIL(&s->namespaces, ns, entry);
	ns->nsid = 1;
	ns->type = BACKEND_RAM;
	ns->size = DEF_RAM_SIZE;
	ns->block_size = DEF_BLOCK_SIZE;

	config_finish(cfg);
	return (cfg);
fail:
	config_free(cfg);
	return (NULL);
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg;
	struct stat st;
	FILE *fp;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (path == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "no configuration file given");
		return (NULL);
	}
	if ((fp = fopen(path, "r")) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (NULL);
	}
	if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: %s", path, strerror(EISDIR));
		fclose(fp);
		return (NULL);
	}
	cfg = config_load_fp(fp, path, true, err, errlen);
	fclose(fp);
	return (cfg);
}

/* Parse YAML held in memory; name stands for the file in messages. */
struct config *
config_load_string(const char *name, const char *text, char *err,
    size_t errlen)
{
	struct config *cfg;
	FILE *fp;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if ((fp = fmemopen((void *)text, strlen(text), "r")) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: %s", name, strerror(errno));
		return (NULL);
	}
	cfg = config_load_fp(fp, name, false, err, errlen);
	fclose(fp);
	return (cfg);
}

static struct config *
config_load_fp(FILE *fp, const char *path, bool is_file, char *err,
    size_t errlen)
{
	struct ctx c = { .file = path, .err = err, .errlen = errlen };
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *root;
	struct config *cfg = NULL;

	if (!yaml_parser_initialize(&parser)) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: out of memory", path);
		return (NULL);
	}
	yaml_parser_set_input_file(&parser, fp);

	if (!yaml_parser_load(&parser, &doc)) {
		yaml_fail(&c, &parser, fp);
		goto out;
	}
	c.doc = &doc;
	if ((root = yaml_document_get_root_node(&doc)) == NULL ||
	    is_null(root)) {
		fail(&c, root, "", NULL, "the configuration is empty");
		goto out_doc;
	}
	/* A second document would be silently ignored: refuse it. */
	if (!yaml_parser_load(&parser, &extra)) {
		yaml_fail(&c, &parser, fp);
		goto out_doc;
	}
	if (yaml_document_get_root_node(&extra) != NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s:%zu:%zu: yaml: only one "
			    "document is allowed", path,
			    extra.start_mark.line + 1,
			    extra.start_mark.column + 1);
		yaml_document_delete(&extra);
		goto out_doc;
	}
	yaml_document_delete(&extra);

	if ((cfg = config_new()) == NULL ||
	    (is_file && (cfg->path = strdup(path)) == NULL)) {
		fail_oom(&c, root, "", NULL);
		goto bad;
	}
	c.cfg = cfg;
	if (parse_root(&c, root) == -1)
		goto bad;
	goto out_doc;
bad:
	config_free(cfg);
	cfg = NULL;
out_doc:
	for (size_t i = 0; i < nitems(c.ids); i++)
		hmap_free(&c.ids[i]);
	yaml_document_delete(&doc);
out:
	yaml_parser_delete(&parser);
	return (cfg);
}

/* Frees the configuration, closing any namespace still open. */
void
config_free(struct config *cfg)
{
	struct port *p;
	struct subsystem *s;
	struct namespace *ns;
	struct referral *r;

	if (cfg == NULL)
		return;
	while ((p = TAILQ_FIRST(&cfg->ports)) != NULL) {
		TAILQ_REMOVE(&cfg->ports, p, entry);
		free(p);
	}
	while ((s = TAILQ_FIRST(&cfg->subsystems)) != NULL) {
		TAILQ_REMOVE(&cfg->subsystems, s, entry);
		host_list_free(&s->hosts);
		while ((ns = TAILQ_FIRST(&s->namespaces)) != NULL) {
			TAILQ_REMOVE(&s->namespaces, ns, entry);
			namespace_free(ns);
		}
		free(s->ns_table);
		free(s->port_ids);
		free(s->health_path);
		free(s);
	}
	while ((r = TAILQ_FIRST(&cfg->referrals)) != NULL) {
		TAILQ_REMOVE(&cfg->referrals, r, entry);
		free(r);
	}
	host_list_free(&cfg->discovery.hosts);
	hmap_free(&cfg->subsys_by_nqn);
	for (size_t i = 0; i < cfg->nhost_conns; i++)
		host_params_clear(&cfg->host_conns[i]);
	free(cfg->host_conns);
	free(cfg->nbd_socket);
	free(cfg->nbd_address);
	free(cfg->nbd_port);
	free(cfg->nbd_tls_psk_file);
	free(cfg->ctl_socket);
	free(cfg->ctl_group);
	free(cfg->ctl_ro_socket);
	free(cfg->state_dir);
	free(cfg->path);
	free(cfg);
}
