/*
 * Target-side control commands: subsystems, namespaces, hosts, ports,
 * referrals, associations and statistics.  Every new object is described
 * as a small YAML document and parsed by config.c, so a live change is
 * validated by exactly the rules a configuration file is.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "nvmfd.h"
#include "ctl-proto.h"

#define RUNNING	running_config

/* ------------------------------------------------------------- helpers */

struct subsystem *
find_subsys(struct cmd_ctx *ctx, const char *nqn, int *rc)
{
	struct subsystem *ss = subsystem_find(RUNNING, nqn);

	if (ss == NULL)
		*rc = cmd_error(ctx, CTL_ENOENT, "no subsystem %s", nqn);
	return (ss);
}

int
parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return (-1);
	errno = 0;
	*out = strtoul(s, &end, 10);
	return (errno || *end || *out > max ? -1 : 0);
}

struct namespace *
find_ns(struct cmd_ctx *ctx, struct subsystem *ss, const char *s, int *rc)
{
	unsigned long nsid;
	struct namespace *ns;

	if (parse_uint(s, NVMFD_MAX_NSID, &nsid) != 0 || nsid == 0) {
		*rc = cmd_error(ctx, CTL_EUSAGE, "bad NSID '%s'", s);
		return (NULL);
	}
	if ((ns = namespace_find(ss, (uint32_t)nsid)) == NULL)
		*rc = cmd_error(ctx, CTL_ENOENT, "%s has no namespace %lu",
		    ss->nqn, nsid);
	return (ns);
}

/* A YAML double-quoted scalar (values come from the command line). */
static void
yq(struct evbuffer *b, const char *s)
{
	evbuffer_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			evbuffer_add_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			evbuffer_add_printf(b, "\\x%02x", c);
		else
			evbuffer_add(b, s, 1);
	}
	evbuffer_add(b, "\"", 1);
}

static void
ykv(struct evbuffer *b, int indent, const char *key, const char *v)
{
	if (v == NULL)
		return;
	evbuffer_add_printf(b, "%*s%s: ", indent, "", key);
	yq(b, v);
	evbuffer_add(b, "\n", 1);
}

/* "a,b,c" as a YAML flow list of quoted items. */
static void
ylist(struct evbuffer *b, int indent, const char *key, const char *csv)
{
	char *copy, *p, *tok;
	bool first = true;

	if (csv == NULL || (copy = strdup(csv)) == NULL)
		return;
	evbuffer_add_printf(b, "%*s%s: [", indent, "", key);
	for (p = copy; (tok = strsep(&p, ",")) != NULL;) {
		if (*tok == '\0')
			continue;
		evbuffer_add_printf(b, "%s", first ? "" : ", ");
		yq(b, tok);
		first = false;
	}
	evbuffer_add(b, "]\n", 2);
	free(copy);
}

/*
 * A new snippet, starting with the running ports so port references in it
 * resolve.  parse_snippet() frees it.
 */
static struct evbuffer *
snippet_new(struct cmd_ctx *ctx, int *rc)
{
	struct evbuffer *b;
	struct port *p;

	if ((b = evbuffer_new()) == NULL) {
		*rc = cmd_error(ctx, CTL_ERR, "out of memory");
		return (NULL);
	}
	evbuffer_add_printf(b, "ports:\n");
	TAILQ_FOREACH(p, &RUNNING->ports, entry) {
		evbuffer_add_printf(b, "  - id: %u\n", p->id);
		ykv(b, 4, "address", p->address);
		ykv(b, 4, "port", p->service);
	}
	return (b);
}

/*
 * Parse and free a snippet; on error, name the option instead of the YAML
 * path: "command:3:5: subsystems[0].namespaces[0].block_size: ..." becomes
 * "--block-size: ...".
 */
static struct config *
parse_snippet(struct cmd_ctx *ctx, struct evbuffer *b, int *rc)
{
	char err[512], *text, *p, *key, *msg;
	struct config *cf;
	size_t len = evbuffer_get_length(b);

	text = malloc(len + 1);
	if (text != NULL)
		evbuffer_copyout(b, text, len);
	evbuffer_free(b);
	if (text == NULL) {
		*rc = cmd_error(ctx, CTL_ERR, "out of memory");
		return (NULL);
	}
	text[len] = '\0';
	cf = config_load_string("command", text, err, sizeof(err));
	free(text);
	if (cf != NULL)
		return (cf);
	key = err;
	for (int i = 0; i < 3 && key; i++)	/* skip "command:L:C:" */
		if ((key = strchr(key, ':')) != NULL)
			key++;
	if (key == NULL || (msg = strstr(key, ": ")) == NULL) {
		*rc = cmd_error(ctx, CTL_EUSAGE, "%s", err);
		return (NULL);
	}
	*msg = '\0';
	msg += 2;
	while (*key == ' ')
		key++;
	/* A subsystem's port list is --ports, not the snippet's ports. */
	if (strncmp(key, "subsystems[0].ports", 19) == 0) {
		*rc = cmd_error(ctx, CTL_EUSAGE, "--ports: %s", msg);
		return (NULL);
	}
	if ((p = strrchr(key, '.')) != NULL)
		key = p + 1;
	if ((p = strchr(key, '[')) != NULL)
		*p = '\0';
	for (p = key; *p; p++)
		if (*p == '_')
			*p = '-';
	if (strcmp(key, "subsystems") == 0 || strcmp(key, "ports") == 0 ||
	    strcmp(key, "referrals") == 0 || strcmp(key, "namespaces") == 0 ||
	    strcmp(key, "(root)") == 0)
		*rc = cmd_error(ctx, CTL_EUSAGE, "%s", msg);
	else
		*rc = cmd_error(ctx, CTL_EUSAGE, "--%s: %s", key, msg);
	return (NULL);
}

static unsigned
ctrl_count(struct subsystem *ss)
{
	struct controller *c;
	unsigned n = 0;

	TAILQ_FOREACH(c, &ss->controllers, entry)
		n += !c->dying;
	return (n);
}

/* ------------------------------------------------------------ version */

int
cmd_version(struct cmd_ctx *ctx)
{
	out_object(ctx->out, "daemon");
	out_str(ctx->out, "version", "%s", PACKAGE_VERSION);
	out_u64(ctx->out, "pid", (uint64_t)getpid());
	out_u64(ctx->out, "workers", (uint64_t)loops_count());
	out_str(ctx->out, "file_io", "%s", io_engine_kind(main_loop->engine));
	out_str(ctx->out, "config", "%s", RUNNING->path ? RUNNING->path :
	    "(built-in default)");
	out_u64(ctx->out, "connections", atomic_load(&nconnections));
	out_end(ctx->out);
	return (CTL_OK);
}

/* --------------------------------------------------------- subsystems */

static void
out_ports_of(struct out *o, struct subsystem *ss)
{
	char buf[256] = "all";
	size_t n = 0;

	if (ss->port_ids != NULL) {
		buf[0] = '\0';
		for (size_t i = 0; i < ss->nport_ids && n < sizeof(buf) - 8; i++)
			n += snprintf(buf + n, sizeof(buf) - n, "%s%u",
			    i ? "," : "", ss->port_ids[i]);
	}
	out_str(o, "ports", "%s", buf);
}

int
cmd_list_subsys(struct cmd_ctx *ctx)
{
	struct subsystem *ss;
	struct namespace *ns;

	out_list(ctx->out, "subsystems");
	TAILQ_FOREACH(ss, &RUNNING->subsystems, entry) {
		unsigned nns = 0;

		TAILQ_FOREACH(ns, &ss->namespaces, entry)
			nns++;
		out_object(ctx->out, NULL);
		out_str(ctx->out, "nqn", "%s", ss->nqn);
		out_u64(ctx->out, "namespaces", nns);
		out_str(ctx->out, "hosts", "%s", ss->allow_any_host ? "any" :
		    "listed");
		out_ports_of(ctx->out, ss);
		out_u64(ctx->out, "controllers", ctrl_count(ss));
		out_str(ctx->out, "serial", "%s", ss->serial);
		out_str(ctx->out, "model", "%s", ss->model);
		out_end(ctx->out);
	}
	out_end(ctx->out);
	return (CTL_OK);
}

static void
out_namespaces(struct out *o, struct subsystem *ss)
{
	struct namespace *ns;
	char uuid[40];

	out_list(o, "namespaces");
	TAILQ_FOREACH(ns, &ss->namespaces, entry) {
		uuid_format(uuid, sizeof(uuid), ns->uuid);
		out_object(o, NULL);
		out_u64(o, "nsid", ns->nsid);
		out_str(o, "backend", "%s", backend_type_name(ns->type));
		if (ns->rbd != NULL) {
			char img[800];

			rbd_spec_format(ns->rbd, img, sizeof(img));
			out_str(o, "path", "%s", img);
		} else
			out_str(o, "path", "%s", ns->path ? ns->path : "-");
		out_u64(o, "size", ns->nlb << ns->lba_shift);
		out_u64(o, "block_size", 1u << ns->lba_shift);
		out_bool(o, "readonly", ns->readonly);
		out_u64(o, "ana_group", ns->anagrpid);
		out_str(o, "uuid", "%s", uuid);
		/* RAM: how much is populated (background fill progress). */
		if (ns->chunks != NULL)
			out_u64(o, "resident", ram_resident(ns));
		out_end(o);
	}
	out_end(o);
}

#define MAX_FROM_TEXT	(64 * 44)	/* 64 prefixes, as text */

/* "10.0.0.0/8,fd00::/8", or "any". */
static void
out_from(struct out *o, const struct host *h)
{
	char list[MAX_FROM_TEXT], pfx[64];
	size_t len = 0;

	list[0] = '\0';
	for (size_t i = 0; i < h->nfrom && len < sizeof(list); i++) {
		prefix_format(&h->from[i], pfx, sizeof(pfx));
		len += snprintf(list + len, sizeof(list) - len, "%s%s",
		    i ? "," : "", pfx);
	}
	out_str(o, "from", "%s", h->nfrom ? list : "any");
}

static void
out_hosts(struct out *o, struct host_list *hosts)
{
	struct host *h;

	out_list(o, "hosts");
	TAILQ_FOREACH(h, hosts, entry) {
		out_object(o, NULL);
		out_str(o, "hostnqn", "%s", h->nqn);
		/* Whether keys are set, never the keys. */
		out_str(o, "dhchap", "%s", h->ctrl_key.len ? "bidirectional" :
		    h->key.len ? "host" : "none");
		out_bool(o, "tls_key", h->tls != NULL);	/* never the key */
		out_from(o, h);
		out_end(o);
	}
	out_end(o);
}

static void
out_ctrl(struct out *o, struct controller *c)
{
	struct qpair *a = c->admin;
	struct qpair_stats st;
	char hostid[40];

	hostid_format(c->hostid, hostid, sizeof(hostid));
	out_object(o, NULL);
	out_u64(o, "cntlid", c->cntlid);
	out_str(o, "subsys", "%s", c->subnqn);
	out_str(o, "host", "%s", c->hostnqn);
	out_str(o, "hostid", "%s", hostid);
	out_str(o, "address", "%s", a ? a->peer : "-");
	out_u64(o, "port", c->port->id);
	out_u64(o, "io_queues", c->nioq);
	out_str(o, "digests", "%s", a == NULL ? "-" : a->hdgst && a->ddgst ?
	    "header,data" : a->hdgst ? "header" : a->ddgst ? "data" : "none");
	/* The admin queue's DH-HMAC-CHAP state (it lives on this loop). */
	out_str(o, "dhchap", "%s", a == NULL || !a->auth_required ? "none" :
	    a->authenticated ? "authenticated" : "pending");
	out_bool(o, "tls", a != NULL && a->tls != NULL);
	out_u64(o, "kato_ms", c->kato_ms);
	out_u64(o, "age_s", (uint64_t)(time(NULL) - (time_t)c->created));
	/* What this controller's host did, as its SMART log would count. */
	health_ctrl_stats(c, &st);
	out_u64(o, "reads", st.reads);
	out_u64(o, "writes", st.writes);
	out_u64(o, "bytes_read", st.data_read);
	out_u64(o, "bytes_written", st.data_written);
	out_u64(o, "errors", st.errors);
	out_double(o, "busy_s", (double)health_busy_ns(&c->busy, now_ns()) / 1e9);
	out_end(o);
}

int
cmd_show_subsys(struct cmd_ctx *ctx)
{
	struct subsystem *ss;
	struct controller *c;
	int rc;

	if ((ss = find_subsys(ctx, ctx->argv[0], &rc)) == NULL)
		return (rc);
	out_object(ctx->out, "subsystem");
	out_str(ctx->out, "nqn", "%s", ss->nqn);
	out_str(ctx->out, "serial", "%s", ss->serial);
	out_str(ctx->out, "model", "%s", ss->model);
	out_bool(ctx->out, "allow_any_host", ss->allow_any_host);
	out_ports_of(ctx->out, ss);
	out_u64(ctx->out, "max_io_queues", ss->max_io_queues);
	out_hosts(ctx->out, &ss->hosts);
	out_namespaces(ctx->out, ss);
	out_list(ctx->out, "controllers");
	TAILQ_FOREACH(c, &ss->controllers, entry)
		if (!c->dying)
			out_ctrl(ctx->out, c);
	out_end(ctx->out);
	out_end(ctx->out);
	return (CTL_OK);
}

int
cmd_add_subsys(struct cmd_ctx *ctx)
{
	const char *nqn = ctx->argv[0], *hosts = cmd_opt(ctx, "hosts");
	struct evbuffer *b;
	struct config *cf;
	struct subsystem *ss;
	int rc = CTL_OK;

	if (subsystem_find(RUNNING, nqn) != NULL)
		return (cmd_error(ctx, CTL_EEXIST, "subsystem %s exists", nqn));
	if ((b = snippet_new(ctx, &rc)) == NULL)
		return (rc);
	evbuffer_add_printf(b, "subsystems:\n");
	ykv(b, 2, "- nqn", nqn);
	ykv(b, 4, "serial", cmd_opt(ctx, "serial"));
	ykv(b, 4, "model", cmd_opt(ctx, "model"));
	if (hosts != NULL && strcmp(hosts, "any") == 0)
		ykv(b, 4, "hosts", "any");
	else if (hosts != NULL)
		ylist(b, 4, "hosts", hosts);
	ylist(b, 4, "ports", cmd_opt(ctx, "ports"));
	ykv(b, 4, "max_io_queues", cmd_opt(ctx, "max-io-queues"));
	ylist(b, 4, "dhchap_hashes", cmd_opt(ctx, "dhchap-hashes"));
	ylist(b, 4, "dhchap_dhgroups", cmd_opt(ctx, "dhchap-dhgroups"));
	if ((cf = parse_snippet(ctx, b, &rc)) == NULL)
		return (rc);
	ss = TAILQ_FIRST(&cf->subsystems);
	subsystem_unlink(cf, ss);
	if (subsystem_publish(RUNNING, ss, ctx->err, sizeof(ctx->err)) != 0) {
		/* Back where config_free() frees all of it (its hosts too). */
		TAILQ_INSERT_TAIL(&cf->subsystems, ss, entry);
		config_free(cf);
		return (CTL_ERR);
	}
	config_free(cf);
	log_info("subsystem %s added", ss->nqn);
	discovery_changed();
	return (CTL_OK);
}

/* The offer lists the command names, as its snippet parsed them; the
 * others stay.  They apply to the next authentication. */
static void
set_offers(struct cmd_ctx *ctx, struct dhchap_offer *to,
    const struct dhchap_offer *parsed)
{
	if (cmd_opt(ctx, "dhchap-hashes")) {
		memcpy(to->hashes, parsed->hashes, sizeof(to->hashes));
		to->nhashes = parsed->nhashes;
	}
	if (cmd_opt(ctx, "dhchap-dhgroups")) {
		memcpy(to->groups, parsed->groups, sizeof(to->groups));
		to->ngroups = parsed->ngroups;
	}
}

/* set-subsys with the discovery NQN: who may discover, and the offers
 * discovery authentication makes. */
static int
set_discovery(struct cmd_ctx *ctx, int onoff)
{
	struct discovery_access *d = &RUNNING->discovery;
	struct evbuffer *b;
	struct config *cf;
	int rc = CTL_OK;

	if (cmd_opt(ctx, "serial") || cmd_opt(ctx, "model") ||
	    cmd_opt(ctx, "max-io-queues"))
		return (cmd_error(ctx, CTL_EUSAGE, "the discovery subsystem "
		    "takes --allow-any-host, --dhchap-hashes and "
		    "--dhchap-dhgroups only"));
	if (!cmd_opt(ctx, "dhchap-hashes") && !cmd_opt(ctx, "dhchap-dhgroups"))
		goto access;
	if ((b = snippet_new(ctx, &rc)) == NULL)
		return (rc);
	evbuffer_add_printf(b, "discovery:\n");
	ylist(b, 2, "dhchap_hashes", cmd_opt(ctx, "dhchap-hashes"));
	ylist(b, 2, "dhchap_dhgroups", cmd_opt(ctx, "dhchap-dhgroups"));
	if ((cf = parse_snippet(ctx, b, &rc)) == NULL)
		return (rc);
	set_offers(ctx, &d->dhchap, &cf->discovery.dhchap);
	config_free(cf);
	discovery_auth_refresh();
access:
	if (onoff >= 0 && onoff != d->allow_any_host) {
		d->allow_any_host = onoff;
		if (!onoff)
			discovery_revoke(NULL);
	}
	log_info("discovery: %s may discover", d->allow_any_host ? "any host" :
	    "listed hosts");
	return (CTL_OK);
}

int
cmd_set_subsys(struct cmd_ctx *ctx)
{
	const char *any = cmd_opt(ctx, "allow-any-host");
	struct subsystem *ss, *parsed;
	struct evbuffer *b;
	struct config *cf;
	int rc = CTL_OK, onoff = -1;

	if (any != NULL && (onoff = cmd_onoff(any)) < 0)
		return (cmd_error(ctx, CTL_EUSAGE, "--allow-any-host: on or off"));
	if (strcmp(ctx->argv[0], NVMF_DISCOVERY_NQN) == 0)
		return (set_discovery(ctx, onoff));
	if ((ss = find_subsys(ctx, ctx->argv[0], &rc)) == NULL)
		return (rc);
	if ((b = snippet_new(ctx, &rc)) == NULL)
		return (rc);
	evbuffer_add_printf(b, "subsystems:\n");
	ykv(b, 2, "- nqn", ss->nqn);
	ykv(b, 4, "serial", cmd_opt(ctx, "serial"));
	ykv(b, 4, "model", cmd_opt(ctx, "model"));
	ykv(b, 4, "max_io_queues", cmd_opt(ctx, "max-io-queues"));
	ylist(b, 4, "dhchap_hashes", cmd_opt(ctx, "dhchap-hashes"));
	ylist(b, 4, "dhchap_dhgroups", cmd_opt(ctx, "dhchap-dhgroups"));
	if ((cf = parse_snippet(ctx, b, &rc)) == NULL)
		return (rc);
	parsed = TAILQ_FIRST(&cf->subsystems);
	/* Identify data is read per command: new values show at once. */
	if (cmd_opt(ctx, "serial"))
		memcpy(ss->serial, parsed->serial, sizeof(ss->serial));
	if (cmd_opt(ctx, "model"))
		memcpy(ss->model, parsed->model, sizeof(ss->model));
	if (cmd_opt(ctx, "max-io-queues"))
		ss->max_io_queues = parsed->max_io_queues;
	set_offers(ctx, &ss->dhchap, &parsed->dhchap);
	auth_subsys_refresh(ss);
	config_free(cf);
	if (onoff >= 0 && onoff != ss->allow_any_host) {
		ss->allow_any_host = onoff;
		if (!onoff)
			host_revoke(ss, NULL);
		discovery_changed();
	}
	log_info("subsystem %s changed", ss->nqn);
	return (CTL_OK);
}

int
cmd_del_subsys(struct cmd_ctx *ctx)
{
	struct subsystem *ss;
	int rc;

	if ((ss = find_subsys(ctx, ctx->argv[0], &rc)) == NULL)
		return (rc);
	log_info("subsystem %s removed", ss->nqn);
	subsystem_unpublish(RUNNING, ss);
	discovery_changed();
	return (CTL_OK);
}

/* --------------------------------------------------------- namespaces */

int
cmd_list_ns(struct cmd_ctx *ctx)
{
	struct subsystem *ss;
	int rc;

	if ((ss = find_subsys(ctx, ctx->argv[0], &rc)) == NULL)
		return (rc);
	out_namespaces(ctx->out, ss);
	return (CTL_OK);
}

/* An explicitly given identifier must not collide with a running one. */
static bool
ids_clash(struct namespace *n)
{
	struct subsystem *ss;
	struct namespace *o;

	TAILQ_FOREACH(ss, &RUNNING->subsystems, entry)
		TAILQ_FOREACH(o, &ss->namespaces, entry)
			if (!memcmp(o->uuid, n->uuid, 16) ||
			    !memcmp(o->nguid, n->nguid, 16) ||
			    !memcmp(o->eui64, n->eui64, 8))
				return (true);
	return (false);
}

/* The last steps of add-ns, on the main loop: publish and report. */
static int
add_ns_publish(struct cmd_ctx *ctx, struct subsystem *ss,
    struct namespace *ns)
{
	if (ids_clash(ns)) {
		namespace_free(ns);
		return (cmd_error(ctx, CTL_EEXIST, "a namespace with the same "
		    "UUID, NGUID or EUI-64 exists"));
	}
	if (ns_publish(ss, ns, ctx->err, sizeof(ctx->err)) != 0) {
		namespace_free(ns);
		return (CTL_ERR);
	}
	ctrl_notify_ns_changed(ss, ns->nsid);
	out_object(ctx->out, "namespace");
	out_u64(ctx->out, "nsid", ns->nsid);
	out_end(ctx->out);
	return (CTL_OK);
}

/* add-ns of a namespace whose opening blocks: it opened (or not) on a pool
 * thread meanwhile.  The subsystem may have gone, the NSID been taken. */
struct add_ns_wait {
	struct cmd_ctx	*ctx;
	char		nqn[NVMFD_NQN_MAX + 1];
};

static void
add_ns_opened(struct namespace *ns, const char *err, void *arg)
{
	struct add_ns_wait *w = arg;
	struct cmd_ctx *ctx = w->ctx;
	struct subsystem *ss = subsystem_find(RUNNING, w->nqn);
	int rc;

	if (err != NULL) {
		namespace_free(ns);
		rc = cmd_error(ctx, CTL_ERR, "%s", err);
	} else if (ss == NULL) {
		namespace_free(ns);
		rc = cmd_error(ctx, CTL_ENOENT, "%s was removed meanwhile",
		    w->nqn);
	} else if (namespace_find(ss, ns->nsid) != NULL) {
		rc = cmd_error(ctx, CTL_EEXIST, "%s has namespace %u already",
		    ss->nqn, ns->nsid);
		namespace_free(ns);
	} else
		rc = add_ns_publish(ctx, ss, ns);
	free(w);
	cmd_done(ctx, rc);
}

int
cmd_add_ns(struct cmd_ctx *ctx)
{
	static const char *keys[][2] = {
		{ "backend", "backend" }, { "size", "size" },
		{ "path", "path" }, { "block-size", "block_size" },
		{ "uuid", "uuid" }, { "nguid", "nguid" }, { "eui64", "eui64" },
		{ "populate", "populate" }, { "pool", "pool" },
		{ "image", "image" }, { "rbd-namespace", "rbd_namespace" },
		{ "ceph-user", "ceph_user" }, { "keyring", "keyring" },
		{ "ceph-conf", "ceph_conf" },
	};
	struct subsystem *ss;
	struct namespace *ns, *o;
	struct evbuffer *b;
	struct config *cf;
	const char *nsid_s = cmd_opt(ctx, "nsid");
	unsigned long nsid = 1;
	char nsbuf[16];
	int rc = CTL_OK;

	if ((ss = find_subsys(ctx, ctx->argv[0], &rc)) == NULL)
		return (rc);
	if (cmd_opt(ctx, "backend") == NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "add-ns: --backend is "
		    "required (ram, file, block or rbd)"));
	if (nsid_s != NULL) {
		if (parse_uint(nsid_s, NVMFD_MAX_NSID, &nsid) != 0 || nsid == 0)
			return (cmd_error(ctx, CTL_EUSAGE, "--nsid: 1 to %u",
			    NVMFD_MAX_NSID));
		TAILQ_FOREACH(o, &ss->namespaces, entry)
			if (o->nsid == nsid)
				return (cmd_error(ctx, CTL_EEXIST, "%s has "
				    "namespace %lu already", ss->nqn, nsid));
	} else {
		/* The lowest free NSID; the list is sorted. */
		TAILQ_FOREACH(o, &ss->namespaces, entry)
			if (o->nsid == nsid)
				nsid++;
		if (nsid > NVMFD_MAX_NSID)
			return (cmd_error(ctx, CTL_EBUSY, "%s has no free NSID",
			    ss->nqn));
	}
	snprintf(nsbuf, sizeof(nsbuf), "%lu", nsid);
	if ((b = snippet_new(ctx, &rc)) == NULL)
		return (rc);
	evbuffer_add_printf(b, "subsystems:\n");
	ykv(b, 2, "- nqn", ss->nqn);
	evbuffer_add_printf(b, "    namespaces:\n");
	ykv(b, 6, "- nsid", nsbuf);
	for (size_t i = 0; i < nitems(keys); i++)
		ykv(b, 8, keys[i][1], cmd_opt(ctx, keys[i][0]));
	if (cmd_opt(ctx, "readonly"))
		ykv(b, 8, "readonly", "true");
	if (cmd_opt(ctx, "direct"))
		ykv(b, 8, "direct", "true");
	if ((cf = parse_snippet(ctx, b, &rc)) == NULL)
		return (rc);
	ns = TAILQ_FIRST(&TAILQ_FIRST(&cf->subsystems)->namespaces);
	TAILQ_REMOVE(&TAILQ_FIRST(&cf->subsystems)->namespaces, ns, entry);
	config_free(cf);
	/* The parsed snippet is gone: the namespace is this subsystem's. */
	ns->subsys = ss;
	if (namespace_open_blocks(ns) && main_loop != NULL) {
		struct add_ns_wait *w;

		if ((w = calloc(1, sizeof(*w))) == NULL) {
			namespace_free(ns);
			return (cmd_error(ctx, CTL_ERR, "out of memory"));
		}
		w->ctx = ctx;
		snprintf(w->nqn, sizeof(w->nqn), "%s", ss->nqn);
		if (namespace_open_async(ns, add_ns_opened, w) != 0) {
			free(w);
			namespace_free(ns);
			return (cmd_error(ctx, CTL_ERR, "out of memory"));
		}
		return (CMD_PENDING);
	}
	return (add_ns_publish(ctx, ss, ns));
}

int
cmd_set_ns(struct cmd_ctx *ctx)
{
	struct subsystem *ss;
	struct namespace *ns;
	const char *ro = cmd_opt(ctx, "readonly");
	const char *grp_s = cmd_opt(ctx, "ana-group");
	const char *size_s = cmd_opt(ctx, "size");
	const char *path = cmd_opt(ctx, "path");
	uint64_t size = 0;
	uint32_t grp = 0;
	int rc, v = -1;

	if ((ss = find_subsys(ctx, ctx->argv[0], &rc)) == NULL ||
	    (ns = find_ns(ctx, ss, ctx->argv[1], &rc)) == NULL)
		return (rc);
	if (ro == NULL && grp_s == NULL && size_s == NULL && path == NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "set-ns: nothing to change "
		    "(--readonly on|off, --ana-group N, --size SIZE, "
		    "--path PATH)"));
	if (path != NULL && (*path == '\0' || strlen(path) >= PATH_MAX))
		return (cmd_error(ctx, CTL_EUSAGE, "--path: a file or block "
		    "device"));
	if (ro != NULL && (v = cmd_onoff(ro)) < 0)
		return (cmd_error(ctx, CTL_EUSAGE, "--readonly: on or off"));
	if (grp_s != NULL && (grp = cmd_ana_group(ctx, grp_s, &rc)) == 0)
		return (rc);
	if (size_s != NULL && (config_parse_size(size_s, &size) != 0 ||
	    size == 0 || size % (1u << ns->lba_shift) != 0))
		return (cmd_error(ctx, CTL_EUSAGE, "--size: a size like 64M or "
		    "1G, a multiple of the %u-byte block", 1u << ns->lba_shift));
	/* First, as they are the changes most likely to be refused; the
	 * size then applies to the new storage. */
	if (path != NULL &&
	    (rc = ns_replace(ns, path, ctx->err, sizeof(ctx->err))) != 0)
		return (rc == -2 ? CTL_EBUSY : CTL_ERR);
	if (size_s != NULL &&
	    (rc = ns_resize(ns, size, ctx->err, sizeof(ctx->err))) != 0)
		return (rc == -2 ? CTL_EBUSY : CTL_ERR);
	if (v >= 0) {
		if (ns_set_readonly(ns, v, ctx->err, sizeof(ctx->err)) != 0)
			return (CTL_ERR);
		log_info("%s namespace %u: %s", ss->nqn, ns->nsid,
		    v ? "read-only" : "writable");
	}
	if (grp != 0 && grp != ns->anagrpid) {
		log_info("%s namespace %u: ANA group %u -> %u", ss->nqn,
		    ns->nsid, ns->anagrpid, grp);
		ana_move_ns(ns, grp);
	}
	return (CTL_OK);
}

/* The size of file and block namespaces' storage, taken again: a file
 * someone else grew, a block device resized. */
int
cmd_rescan_ns(struct cmd_ctx *ctx)
{
	struct subsystem *ss;
	struct namespace *ns, *one = NULL;
	bool changed;
	int rc = CTL_OK;

	if ((ss = find_subsys(ctx, ctx->argv[0], &rc)) == NULL ||
	    (ctx->argc > 1 &&
	    (one = find_ns(ctx, ss, ctx->argv[1], &rc)) == NULL))
		return (rc);
	out_list(ctx->out, "namespaces");
	TAILQ_FOREACH(ns, &ss->namespaces, entry) {
		char err[256];

		if (one != NULL && ns != one)
			continue;
		if (ns_rescan(ns, &changed, err, sizeof(err)) != 0) {
			log_warnx("%s namespace %u: %s", ss->nqn, ns->nsid, err);
			if (rc == CTL_OK)
				snprintf(ctx->err, sizeof(ctx->err), "%s", err);
			rc = CTL_ERR;
			continue;
		}
		out_object(ctx->out, NULL);
		out_u64(ctx->out, "nsid", ns->nsid);
		out_u64(ctx->out, "size", ns->nlb << ns->lba_shift);
		out_bool(ctx->out, "changed", changed);
		out_end(ctx->out);
	}
	out_end(ctx->out);
	return (rc);
}

/* Where an injected error strikes (--at): FAULT_AT_*, or -1 after an
 * error was set. */
static int
inject_where(struct cmd_ctx *ctx, const struct namespace *ns,
    const char *at, int e)
{
	if (at == NULL || strcmp(at, "io") == 0) {
		if (e == 0)
			return (cmd_error(ctx, CTL_EUSAGE, "--error short: "
			    "only with --at engine (a transfer cut short)"),
			    -1);
		return (FAULT_AT_IO);
	}
	if (strcmp(at, "engine") != 0)
		return (cmd_error(ctx, CTL_EUSAGE, "--at: io or engine"), -1);
#ifndef NVMFD_FAULT_INJECTION
	(void)ns;
	return (cmd_error(ctx, CTL_EUSAGE, "--at engine: this nvmfd is not "
	    "built with --enable-fault-injection"), -1);
#else
	if (ns->type != BACKEND_FILE && ns->type != BACKEND_BLOCK)
		return (cmd_error(ctx, CTL_EUSAGE, "--at engine: namespace "
		    "%u is a %s namespace; only file and block namespaces use "
		    "the I/O engine", ns->nsid, backend_type_name(ns->type)),
		    -1);
	return (FAULT_AT_ENGINE);
#endif
}

/* Make the next reads and/or writes of a namespace fail (for tests of
 * what hosts and monitoring see); --count 0 clears it. */
int
cmd_inject_error(struct cmd_ctx *ctx)
{
	struct subsystem *ss;
	struct namespace *ns;
	const char *op = cmd_opt(ctx, "op"), *err = cmd_opt(ctx, "error");
	const char *count = cmd_opt(ctx, "count");
	unsigned long n = 1;
	uint8_t ops;
	char *end;
	int rc, e, where;

	if ((ss = find_subsys(ctx, ctx->argv[0], &rc)) == NULL ||
	    (ns = find_ns(ctx, ss, ctx->argv[1], &rc)) == NULL)
		return (rc);
	if (op == NULL || strcmp(op, "any") == 0)
		ops = FAULT_READ | FAULT_WRITE;
	else if (strcmp(op, "read") == 0)
		ops = FAULT_READ;
	else if (strcmp(op, "write") == 0)
		ops = FAULT_WRITE;
	else
		return (cmd_error(ctx, CTL_EUSAGE, "--op: read, write or any"));
	if (err == NULL || strcmp(err, "eio") == 0)
		e = EIO;
	else if (strcmp(err, "enospc") == 0)
		e = ENOSPC;
	else if (strcmp(err, "short") == 0)
		e = 0;
	else
		return (cmd_error(ctx, CTL_EUSAGE, "--error: eio, enospc or "
		    "short"));
	if (count != NULL) {
		errno = 0;
		n = strtoul(count, &end, 10);
		if (errno != 0 || end == count || *end != '\0' ||
		    n > UINT32_MAX || count[0] == '-')
			return (cmd_error(ctx, CTL_EUSAGE, "--count: 0 to %u",
			    UINT32_MAX));
	}
	if ((where = inject_where(ctx, ns, cmd_opt(ctx, "at"), e)) < 0)
		return (CTL_EUSAGE);
	/* Mode first, then the count that arms it. */
	atomic_store(&ns->fault_left, 0);
	ns->fault_ops = ops;
	ns->fault_at = (uint8_t)where;
	ns->fault_errno = e;
	atomic_store(&ns->fault_left, (unsigned)n);
	log_info("%s namespace %u: the next %lu %s fail with %s%s", ss->nqn,
	    ns->nsid, n, ops == FAULT_READ ? "reads" : ops == FAULT_WRITE ?
	    "writes" : "reads and writes", e == EIO ? "EIO" : e == ENOSPC ?
	    "ENOSPC" : "a short transfer", where == FAULT_AT_ENGINE ?
	    " in the I/O engine" : "");
	return (CTL_OK);
}

int
cmd_del_ns(struct cmd_ctx *ctx)
{
	struct subsystem *ss;
	struct namespace *ns;
	uint32_t nsid;
	int rc;

	if ((ss = find_subsys(ctx, ctx->argv[0], &rc)) == NULL ||
	    (ns = find_ns(ctx, ss, ctx->argv[1], &rc)) == NULL)
		return (rc);
	nsid = ns->nsid;
	ns_unpublish(ns);
	ctrl_notify_ns_changed(ss, nsid);
	log_info("%s namespace %u removed", ss->nqn, nsid);
	return (CTL_OK);
}

/* --------------------------------------------------------------- hosts */

/*
 * Where a host command's NQN keeps its allowed hosts: a subsystem, or for
 * the discovery NQN the discovery section (who may discover, with which
 * DH-HMAC-CHAP keys).
 */
struct host_scope {
	struct subsystem *ss;		/* NULL: discovery */
	struct host_list *hosts;
	bool		*allow_any_host;
	const char	*nqn;
};

static int
find_scope(struct cmd_ctx *ctx, const char *nqn, struct host_scope *sc)
{
	int rc = CTL_OK;

	memset(sc, 0, sizeof(*sc));
	if (strcmp(nqn, NVMF_DISCOVERY_NQN) == 0) {
		sc->hosts = &RUNNING->discovery.hosts;
		sc->allow_any_host = &RUNNING->discovery.allow_any_host;
		sc->nqn = NVMF_DISCOVERY_NQN;
		return (CTL_OK);
	}
	if ((sc->ss = find_subsys(ctx, nqn, &rc)) == NULL)
		return (rc);
	sc->hosts = &sc->ss->hosts;
	sc->allow_any_host = &sc->ss->allow_any_host;
	sc->nqn = sc->ss->nqn;
	return (CTL_OK);
}

/* Keys changed: the next authentication of its controllers uses them. */
static void
scope_auth_refresh(struct host_scope *sc)
{
	if (sc->ss != NULL)
		auth_subsys_refresh(sc->ss);
	else
		discovery_auth_refresh();
}

/* The host lost access (or may not connect from where it is). */
static void
scope_revoke(struct host_scope *sc, const char *hostnqn)
{
	if (sc->ss != NULL) {
		host_revoke(sc->ss, hostnqn);
		discovery_changed();	/* what the host's log shows */
	} else
		discovery_revoke(hostnqn);
}

int
cmd_list_hosts(struct cmd_ctx *ctx)
{
	struct host_scope sc;
	int rc;

	if ((rc = find_scope(ctx, ctx->argv[0], &sc)) != CTL_OK)
		return (rc);
	out_bool(ctx->out, "allow_any_host", *sc.allow_any_host);
	out_hosts(ctx->out, sc.hosts);
	return (CTL_OK);
}

/* --tls-key KEY|@FILE [--tls-kdf compat|rfc8446]; *t stays NULL for
 * "none" (or "") and without the option.  Returns CTL_OK or an error
 * already reported. */
static int
host_tls_opts(struct cmd_ctx *ctx, struct host_tls **t, bool *given)
{
	const char *key = cmd_opt(ctx, "tls-key");
	const char *kdf = cmd_opt(ctx, "tls-kdf");
	char err[300];

	*t = NULL;
	*given = key != NULL;
	if (key == NULL) {
		if (kdf != NULL)
			return (cmd_error(ctx, CTL_EUSAGE, "--tls-kdf needs "
			    "--tls-key"));
		return (CTL_OK);
	}
	if (strcmp(key, "none") == 0 || *key == '\0')
		return (CTL_OK);
	if ((*t = host_tls_load(key, kdf, err, sizeof(err))) == NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "%s", err));
	return (CTL_OK);
}

/*
 * --dhchap-secret / --dhchap-ctrl-secret / --tls-key onto h, all checked
 * before any applies.  "" removes a key.  Returns CTL_OK or an error code.
 */
static int
host_set_keys(struct cmd_ctx *ctx, struct host *h)
{
	const char *hs = cmd_opt(ctx, "dhchap-secret");
	const char *cs = cmd_opt(ctx, "dhchap-ctrl-secret");
	struct dhchap_key hk = h->key, ck = h->ctrl_key;
	char *hstr = NULL, *cstr = NULL, msg[256];
	struct host_tls *t = NULL;
	bool tgiven = false;
	int rc = CTL_OK;

	if (hs != NULL && *hs != '\0' &&
	    auth_key_load(hs, &hk, msg, sizeof(msg)) == -1)
		rc = cmd_error(ctx, CTL_EUSAGE, "--dhchap-secret: %s", msg);
	else if (hs != NULL && *hs == '\0')
		memset(&hk, 0, sizeof(hk));
	if (rc == CTL_OK && cs != NULL && *cs != '\0' &&
	    auth_key_load(cs, &ck, msg, sizeof(msg)) == -1)
		rc = cmd_error(ctx, CTL_EUSAGE, "--dhchap-ctrl-secret: %s", msg);
	else if (cs != NULL && *cs == '\0')
		memset(&ck, 0, sizeof(ck));
	if (rc == CTL_OK && ck.len && !hk.len)
		rc = cmd_error(ctx, CTL_EUSAGE, "a controller key needs a host "
		    "key (--dhchap-secret) too");
	if (rc == CTL_OK && ((hs && *hs && (hstr = strdup(hs)) == NULL) ||
	    (cs && *cs && (cstr = strdup(cs)) == NULL)))
		rc = cmd_error(ctx, CTL_ERR, "out of memory");
	if (rc == CTL_OK)
		rc = host_tls_opts(ctx, &t, &tgiven);
	if (rc != CTL_OK) {
		free(hstr);
		free(cstr);
		dhchap_key_clear(&hk);
		dhchap_key_clear(&ck);
		return (rc);
	}
	if (hs != NULL) {
		struct host tmp = { .dhchap_secret = h->dhchap_secret };

		auth_host_clear(&tmp);
		h->dhchap_secret = hstr;
	}
	if (cs != NULL) {
		struct host tmp = { .dhchap_ctrl_secret = h->dhchap_ctrl_secret };

		auth_host_clear(&tmp);
		h->dhchap_ctrl_secret = cstr;
	}
	h->key = hk;
	h->ctrl_key = ck;
	dhchap_key_clear(&hk);
	dhchap_key_clear(&ck);
	if (tgiven) {
		host_tls_free(h->tls);
		h->tls = t;
	}
	return (CTL_OK);
}

/* --from parsed into *p, *n (nothing given: *given false). */
static int
from_opt(struct cmd_ctx *ctx, struct addr_prefix **p, size_t *n, bool *given)
{
	const char *v = cmd_opt(ctx, "from");

	*given = v != NULL;
	if (v != NULL && prefix_list_parse(v, p, n) != 0)
		return (cmd_error(ctx, CTL_EUSAGE, "--from: '%s' is not a list "
		    "of addresses or prefixes like 10.0.0.0/8,fd00::/8 "
		    "(or any)", v));
	return (CTL_OK);
}

int
cmd_add_host(struct cmd_ctx *ctx)
{
	struct host_scope sc;
	struct host *h;
	bool given;
	int rc;

	if ((rc = find_scope(ctx, ctx->argv[0], &sc)) != CTL_OK)
		return (rc);
	if (!nqn_valid(ctx->argv[1]))
		return (cmd_error(ctx, CTL_EUSAGE, "'%s' is not a valid NQN",
		    ctx->argv[1]));
	if ((h = host_list_find(sc.hosts, ctx->argv[1])) != NULL)
		return (cmd_error(ctx, CTL_EEXIST, "%s is allowed "
		    "already", h->nqn));
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return (cmd_error(ctx, CTL_ERR, "out of memory"));
	snprintf(h->nqn, sizeof(h->nqn), "%s", ctx->argv[1]);
	if ((rc = from_opt(ctx, &h->from, &h->nfrom, &given)) != CTL_OK ||
	    (rc = host_set_keys(ctx, h)) != CTL_OK) {
		host_free(h);
		return (rc);
	}
	TAILQ_INSERT_TAIL(sc.hosts, h, entry);
	scope_auth_refresh(&sc);
	if (sc.ss != NULL)
		discovery_changed();
	log_info("%s %s: host %s allowed%s%s", sc.ss ? "subsystem" :
	    "discovery", sc.nqn, h->nqn, h->key.len ? " (DH-HMAC-CHAP)" : "",
	    h->tls ? " (TLS key)" : "");
	if (*sc.allow_any_host)
		out_str(ctx->out, "note", "any host may still %s; "
		    "'set-subsys %s --allow-any-host off' restricts it to the "
		    "listed hosts", sc.ss ? "connect" : "discover", sc.nqn);
	return (CTL_OK);
}

/* The host argv[1] listed under argv[0]. */
static struct host *
find_listed_host(struct cmd_ctx *ctx, struct host_scope *sc, int *rc)
{
	struct host *h;

	if ((*rc = find_scope(ctx, ctx->argv[0], sc)) != CTL_OK)
		return (NULL);
	if ((h = host_list_find(sc->hosts, ctx->argv[1])) == NULL)
		*rc = cmd_error(ctx, CTL_ENOENT, "%s is not listed on %s",
		    ctx->argv[1], sc->nqn);
	return (h);
}

/* New keys apply to the next authentication, associations stay. */
int
cmd_set_host(struct cmd_ctx *ctx)
{
	struct host_scope sc;
	struct host *h;
	struct addr_prefix *from = NULL;
	size_t nfrom = 0;
	bool given;
	int rc;

	if ((h = find_listed_host(ctx, &sc, &rc)) == NULL)
		return (rc);
	if (cmd_opt(ctx, "dhchap-secret") == NULL &&
	    cmd_opt(ctx, "dhchap-ctrl-secret") == NULL &&
	    cmd_opt(ctx, "tls-key") == NULL && cmd_opt(ctx, "from") == NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "nothing to change: give "
		    "--dhchap-secret, --dhchap-ctrl-secret, --tls-key or "
		    "--from"));
	if ((rc = from_opt(ctx, &from, &nfrom, &given)) != CTL_OK)
		return (rc);
	if ((rc = host_set_keys(ctx, h)) != CTL_OK) {
		free(from);
		return (rc);
	}
	scope_auth_refresh(&sc);
	if (cmd_opt(ctx, "dhchap-secret") != NULL ||
	    cmd_opt(ctx, "dhchap-ctrl-secret") != NULL ||
	    cmd_opt(ctx, "tls-key") != NULL)
		log_info("%s %s: host %s keys changed", sc.ss ? "subsystem" :
		    "discovery", sc.nqn, h->nqn);
	if (given) {
		free(h->from);
		h->from = from;
		h->nfrom = nfrom;
		scope_revoke(&sc, h->nqn);
		log_info("%s %s: host %s may connect from %s", sc.ss ?
		    "subsystem" : "discovery", sc.nqn, h->nqn, h->nfrom ?
		    cmd_opt(ctx, "from") : "anywhere");
	}
	return (CTL_OK);
}

int
cmd_del_host(struct cmd_ctx *ctx)
{
	struct host_scope sc;
	struct host *h;
	int rc;

	if ((h = find_listed_host(ctx, &sc, &rc)) == NULL)
		return (rc);
	TAILQ_REMOVE(sc.hosts, h, entry);
	scope_revoke(&sc, h->nqn);
	log_info("%s %s: host %s no longer allowed", sc.ss ? "subsystem" :
	    "discovery", sc.nqn, h->nqn);
	host_free(h);
	return (CTL_OK);
}

/* --------------------------------------------------------------- ports */

int
cmd_list_ports(struct cmd_ctx *ctx)
{
	struct port *p;

	out_list(ctx->out, "ports");
	TAILQ_FOREACH(p, &RUNNING->ports, entry) {
		out_object(ctx->out, NULL);
		out_u64(ctx->out, "id", p->id);
		out_str(ctx->out, "address", "%s", p->address);
		out_str(ctx->out, "port", "%s", p->service);
		out_u64(ctx->out, "inline_data_size", p->inline_data_size);
		out_u64(ctx->out, "maxh2cdata", p->maxh2cdata);
		out_u64(ctx->out, "max_queue_depth", p->max_queue_depth);
		out_bool(ctx->out, "header_digest", p->header_digest);
		out_bool(ctx->out, "data_digest", p->data_digest);
		out_str(ctx->out, "tls", "%s", port_tls_name(p->tls));
		/* The list's own reference is not a connection. */
		out_u64(ctx->out, "connections",
		    (uint64_t)(atomic_load(&p->refs) - 1));
		out_end(ctx->out);
	}
	out_end(ctx->out);
	return (CTL_OK);
}

int
cmd_add_port(struct cmd_ctx *ctx)
{
	static const char *keys[][2] = {
		{ "id", "id" }, { "port", "port" },
		{ "inline-data-size", "inline_data_size" },
		{ "maxh2cdata", "maxh2cdata" },
		{ "max-queue-depth", "max_queue_depth" }, { "tls", "tls" },
	};
	const char *hd = cmd_opt(ctx, "header-digest");
	const char *dd = cmd_opt(ctx, "data-digest");
	unsigned long id;
	struct evbuffer *b;
	struct config *cf;
	struct port *p;
	int rc = CTL_OK;

	if (cmd_opt(ctx, "address") == NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "add-port: --address is "
		    "required"));
	if ((hd && cmd_onoff(hd) < 0) || (dd && cmd_onoff(dd) < 0))
		return (cmd_error(ctx, CTL_EUSAGE, "digests: on or off"));
	/* A taken ID is a duplicate, as for the other add commands. */
	if (cmd_opt(ctx, "id") != NULL &&
	    parse_uint(cmd_opt(ctx, "id"), 65535, &id) == 0 &&
	    port_find(RUNNING, (uint16_t)id) != NULL)
		return (cmd_error(ctx, CTL_EEXIST, "port %lu exists", id));
	if ((b = snippet_new(ctx, &rc)) == NULL)
		return (rc);
	ykv(b, 2, "- address", cmd_opt(ctx, "address"));
	for (size_t i = 0; i < nitems(keys); i++)
		ykv(b, 4, keys[i][1], cmd_opt(ctx, keys[i][0]));
	if (hd)
		ykv(b, 4, "header_digest", cmd_onoff(hd) ? "true" : "false");
	if (dd)
		ykv(b, 4, "data_digest", cmd_onoff(dd) ? "true" : "false");
	ylist(b, 4, "dhchap_hashes", cmd_opt(ctx, "dhchap-hashes"));
	ylist(b, 4, "dhchap_dhgroups", cmd_opt(ctx, "dhchap-dhgroups"));
	if ((cf = parse_snippet(ctx, b, &rc)) == NULL)
		return (rc);
	p = TAILQ_LAST(&cf->ports, port_list);
	TAILQ_REMOVE(&cf->ports, p, entry);
	config_free(cf);
	p->fd = -1;
	if (port_publish(RUNNING, p, ctx->err, sizeof(ctx->err)) != 0) {
		free(p);
		return (CTL_ERR);
	}
	discovery_changed();
	out_object(ctx->out, "port");
	out_u64(ctx->out, "id", p->id);
	out_end(ctx->out);
	return (CTL_OK);
}

int
cmd_del_port(struct cmd_ctx *ctx)
{
	unsigned long id;
	struct port *p;

	if (parse_uint(ctx->argv[0], 65535, &id) != 0)
		return (cmd_error(ctx, CTL_EUSAGE, "bad port ID '%s'",
		    ctx->argv[0]));
	if ((p = port_find(RUNNING, (uint16_t)id)) == NULL)
		return (cmd_error(ctx, CTL_ENOENT, "no port %lu", id));
	log_info("port %lu removed", id);
	port_unpublish(RUNNING, p);
	discovery_changed();
	return (CTL_OK);
}

/* ----------------------------------------------------------- referrals */

int
cmd_list_referrals(struct cmd_ctx *ctx)
{
	struct referral *r;

	out_list(ctx->out, "referrals");
	TAILQ_FOREACH(r, &RUNNING->referrals, entry) {
		out_object(ctx->out, NULL);
		out_str(ctx->out, "address", "%s", r->address);
		out_str(ctx->out, "port", "%s", r->service);
		out_u64(ctx->out, "port_id", r->port_id);
		out_end(ctx->out);
	}
	out_end(ctx->out);
	return (CTL_OK);
}

int
cmd_add_referral(struct cmd_ctx *ctx)
{
	struct evbuffer *b;
	struct config *cf;
	struct referral *r, *o;
	int rc = CTL_OK;

	if (cmd_opt(ctx, "address") == NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "add-referral: --address is "
		    "required"));
	if ((b = snippet_new(ctx, &rc)) == NULL)
		return (rc);
	evbuffer_add_printf(b, "referrals:\n");
	ykv(b, 2, "- address", cmd_opt(ctx, "address"));
	ykv(b, 4, "port", cmd_opt(ctx, "port"));
	ykv(b, 4, "port_id", cmd_opt(ctx, "port-id"));
	if ((cf = parse_snippet(ctx, b, &rc)) == NULL)
		return (rc);
	r = TAILQ_FIRST(&cf->referrals);
	TAILQ_REMOVE(&cf->referrals, r, entry);
	config_free(cf);
	TAILQ_FOREACH(o, &RUNNING->referrals, entry)
		if (!strcmp(o->address, r->address) &&
		    !strcmp(o->service, r->service)) {
			free(r);
			return (cmd_error(ctx, CTL_EEXIST, "referral exists"));
		}
	TAILQ_INSERT_TAIL(&RUNNING->referrals, r, entry);
	discovery_changed();
	return (CTL_OK);
}

int
cmd_del_referral(struct cmd_ctx *ctx)
{
	struct referral *r;
	const char *svc = ctx->argc > 1 ? ctx->argv[1] : NULL;

	TAILQ_FOREACH(r, &RUNNING->referrals, entry)
		if (!strcmp(r->address, ctx->argv[0]) &&
		    (svc == NULL || !strcmp(r->service, svc)))
			break;
	if (r == NULL)
		return (cmd_error(ctx, CTL_ENOENT, "no referral to %s%s%s",
		    ctx->argv[0], svc ? " port " : "", svc ? svc : ""));
	TAILQ_REMOVE(&RUNNING->referrals, r, entry);
	free(r);
	discovery_changed();
	return (CTL_OK);
}

/* -------------------------------------------------------- associations */

int
cmd_list_ctrl(struct cmd_ctx *ctx)
{
	const char *only = cmd_opt(ctx, "subsys");
	struct subsystem *ss;
	struct controller *c;
	int rc;

	if (only && strcmp(only, NVMF_DISCOVERY_NQN) &&
	    find_subsys(ctx, only, &rc) == NULL)
		return (rc);
	out_list(ctx->out, "controllers");
	TAILQ_FOREACH(ss, &RUNNING->subsystems, entry)
		TAILQ_FOREACH(c, &ss->controllers, entry)
			if (!c->dying && (!only || !strcmp(only, ss->nqn)))
				out_ctrl(ctx->out, c);
	TAILQ_FOREACH(c, &discovery_controllers, entry)
		if (!c->dying && (!only || !strcmp(only, NVMF_DISCOVERY_NQN)))
			out_ctrl(ctx->out, c);
	out_end(ctx->out);
	return (CTL_OK);
}

int
cmd_terminate(struct cmd_ctx *ctx)
{
	const char *only = cmd_opt(ctx, "subsys");
	struct subsystem *ss;
	struct controller *c, *found = NULL;
	unsigned long id;
	int matches = 0;

	if (parse_uint(ctx->argv[0], 0xffef, &id) != 0 || id == 0)
		return (cmd_error(ctx, CTL_EUSAGE, "bad controller ID '%s'",
		    ctx->argv[0]));
	TAILQ_FOREACH(ss, &RUNNING->subsystems, entry)
		TAILQ_FOREACH(c, &ss->controllers, entry)
			if (!c->dying && c->cntlid == id &&
			    (!only || !strcmp(only, ss->nqn))) {
				found = c;
				matches++;
			}
	TAILQ_FOREACH(c, &discovery_controllers, entry)
		if (!c->dying && c->cntlid == id &&
		    (!only || !strcmp(only, NVMF_DISCOVERY_NQN))) {
			found = c;
			matches++;
		}
	if (matches == 0)
		return (cmd_error(ctx, CTL_ENOENT, "no controller %lu", id));
	if (matches > 1)
		return (cmd_error(ctx, CTL_EUSAGE, "controller %lu exists in "
		    "several subsystems: name one with --subsys", id));
	ctrl_destroy(found, "terminated by nvmfctl");
	return (CTL_OK);
}

/* ---------------------------------------------------------- statistics */

static double
hist_percentile(const uint64_t *h, uint64_t total, double p)
{
	uint64_t want = (uint64_t)(total * p + 0.999999), seen = 0;

	for (int i = 0; i < NS_LAT_BUCKETS; i++) {
		seen += h[i];
		if (h[i] && seen >= want)
			return (i == 0 ? 1 : (double)(1ull << i));
	}
	return (0);
}

struct qstat_arg {
	struct out	*out;
	const char	*only;
};

static void
out_qpair_stats(struct qpair *qp, void *arg)
{
	struct qstat_arg *a = arg;
	struct controller *c = qp->ctrl;

	if (c == NULL || qp->state != QP_ACTIVE ||
	    (a->only && strcmp(a->only, c->subnqn)))
		return;
	out_object(a->out, NULL);
	out_str(a->out, "subsys", "%s", c->subnqn);
	out_u64(a->out, "cntlid", c->cntlid);
	out_u64(a->out, "qid", qp->qid);
	out_str(a->out, "peer", "%s", qp->peer);
	out_u64(a->out, "commands", STAT_GET(qp->stats.cmds));
	out_u64(a->out, "bytes_read", STAT_GET(qp->stats.bytes_read));
	out_u64(a->out, "bytes_written",
	    STAT_GET(qp->stats.bytes_written));
	out_u64(a->out, "errors", STAT_GET(qp->stats.errors));
	out_end(a->out);
}

int
cmd_stats(struct cmd_ctx *ctx)
{
	const char *only = cmd_opt(ctx, "subsys");
	struct subsystem *ss;
	struct namespace *ns;
	int rc;

	if (only && find_subsys(ctx, only, &rc) == NULL)
		return (rc);
	out_list(ctx->out, "namespaces");
	TAILQ_FOREACH(ss, &RUNNING->subsystems, entry) {
		if (only && strcmp(only, ss->nqn))
			continue;
		TAILQ_FOREACH(ns, &ss->namespaces, entry) {
			struct ns_stats sum;
			uint64_t total = 0;

			ns_stats_sum(ns, &sum);
			for (int i = 0; i < NS_LAT_BUCKETS; i++)
				total += sum.lat[i];
			out_object(ctx->out, NULL);
			out_str(ctx->out, "subsys", "%s", ss->nqn);
			out_u64(ctx->out, "nsid", ns->nsid);
			out_u64(ctx->out, "reads", sum.reads);
			out_u64(ctx->out, "writes", sum.writes);
			out_u64(ctx->out, "other", sum.other);
			out_u64(ctx->out, "errors", sum.errors);
			out_u64(ctx->out, "media_errors", sum.media_errors);
			out_u64(ctx->out, "bytes_read", sum.bytes_read);
			out_u64(ctx->out, "bytes_written", sum.bytes_written);
			out_double(ctx->out, "lat_p50_us_le",
			    hist_percentile(sum.lat, total, 0.5));
			out_double(ctx->out, "lat_p99_us_le",
			    hist_percentile(sum.lat, total, 0.99));
			if (ctx->json) {
				/* Bucket i counts latencies below 2^i us. */
				out_list(ctx->out, "latency_histogram_us");
				for (int i = 0; i < NS_LAT_BUCKETS; i++) {
					if (sum.lat[i] == 0)
						continue;
					out_object(ctx->out, NULL);
					out_u64(ctx->out, "below",
					    1ull << i);
					out_u64(ctx->out, "count", sum.lat[i]);
					out_end(ctx->out);
				}
				out_end(ctx->out);
			}
			out_end(ctx->out);
		}
	}
	out_end(ctx->out);
	if (cmd_opt(ctx, "queues")) {
		struct qstat_arg a = { ctx->out, only };

		out_list(ctx->out, "queues");
		qpairs_foreach(out_qpair_stats, &a);
		out_end(ctx->out);
	}
	return (CTL_OK);
}
