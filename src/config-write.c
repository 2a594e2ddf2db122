/*
 * Write a configuration back as YAML that loads to the same state
 * (nvmfctl save, show-config).  Derived identifiers are written out, so a
 * saved file pins them even if the derivation ever changes.  DH-HMAC-CHAP
 * secrets given inline are written only when the caller asks for them.
 */
#include "config.h"

#include <stdio.h>
#include <time.h>

#include "nvmfd.h"

/* A double-quoted YAML scalar.  Paths may hold any byte but NUL: control
 * characters are escaped, or a newline would load back as a space. */
static void
yq(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\x%02x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

static void
hex(FILE *fp, const uint8_t *p, size_t n)
{
	fputc('"', fp);
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "%02x", p[i]);
	fputc('"', fp);
}

static void
write_namespace(FILE *fp, const struct namespace *ns)
{
	uint64_t size = ns->ops != NULL ? ns->nlb << ns->lba_shift : ns->size;
	char text[40];

	fprintf(fp, "      - nsid: %u\n", ns->nsid);
	fprintf(fp, "        backend: %s\n", backend_type_name(ns->type));
	if (ns->path) {
		fprintf(fp, "        path: ");
		yq(fp, ns->path);
		fputc('\n', fp);
	}
	if (ns->rbd != NULL) {
		const char *keys[] = { "pool", "image", "rbd_namespace",
		    "ceph_user", "keyring", "ceph_conf" };
		const char *vals[] = { ns->rbd->pool, ns->rbd->image,
		    ns->rbd->nspace, ns->rbd->user, ns->rbd->keyring,
		    ns->rbd->conf };

		for (size_t i = 0; i < nitems(keys); i++) {
			if (vals[i] == NULL)
				continue;
			fprintf(fp, "        %s: ", keys[i]);
			yq(fp, vals[i]);
			fputc('\n', fp);
		}
	}
	/* The size hosts see now (a shrink may still wait for I/O). */
	if (ns->type != BACKEND_BLOCK && ns->type != BACKEND_RBD && size)
		fprintf(fp, "        size: %llu\n", (unsigned long long)size);
	/* 0 only for a block device that uses its own block size. */
	if (ns->block_size)
		fprintf(fp, "        block_size: %u\n", ns->block_size);
	fprintf(fp, "        readonly: %s\n", ns->readonly ? "true" : "false");
	fprintf(fp, "        ana_group: %u\n", ns->anagrpid);
	if (ns->type == BACKEND_FILE || ns->type == BACKEND_BLOCK)
		fprintf(fp, "        direct: %s\n", ns->direct ? "true" : "false");
	else if (ns->type == BACKEND_RAM)
		fprintf(fp, "        populate: %s\n",
		    ns->populate == RAM_POPULATE_LAZY ? "lazy" : "background");
	uuid_format(text, sizeof(text), ns->uuid);
	fprintf(fp, "        uuid: \"%s\"\n        nguid: ", text);
	hex(fp, ns->nguid, sizeof(ns->nguid));
	fprintf(fp, "\n        eui64: ");
	hex(fp, ns->eui64, sizeof(ns->eui64));
	fputc('\n', fp);
}

/* Key files are named; a secret itself only when asked for. */
static void
write_secret(FILE *fp, int indent, const char *key, const char *secret,
    bool secrets)
{
	if (secret == NULL)
		return;
	if (secret[0] != '@' && !secrets) {
		fprintf(fp, "%*s# %s: hidden (--show-secrets shows it)\n",
		    indent, "", key);
		return;
	}
	fprintf(fp, "%*s%s: ", indent, "", key);
	yq(fp, secret);
	fputc('\n', fp);
}

/* The items of a hosts: list, "- " at indent, their keys 2 further in. */
static void
write_hosts(FILE *fp, int indent, const struct host_list *list, bool secrets)
{
	const struct host *h;
	int in = indent + 2;

	TAILQ_FOREACH(h, list, entry) {
		fprintf(fp, "%*s- %s", indent, "", h->dhchap_secret || h->tls ||
		    h->nfrom ? "nqn: " : "");
		yq(fp, h->nqn);
		fputc('\n', fp);
		if (h->nfrom) {
			char pfx[64];

			fprintf(fp, "%*sfrom: [", in, "");
			for (size_t i = 0; i < h->nfrom; i++) {
				prefix_format(&h->from[i], pfx, sizeof(pfx));
				fprintf(fp, "%s\"%s\"", i ? ", " : "", pfx);
			}
			fprintf(fp, "]\n");
		}
		write_secret(fp, in, "dhchap_secret", h->dhchap_secret,
		    secrets);
		write_secret(fp, in, "dhchap_ctrl_secret",
		    h->dhchap_ctrl_secret, secrets);
		if (h->tls != NULL) {
			const char *k = host_tls_spec(h->tls);

			write_secret(fp, in, "tls_key", k, secrets);
			/* Only with the key it belongs to. */
			if (secrets || k[0] == '@')
				fprintf(fp, "%*stls_kdf: %s\n", in, "",
				    host_tls_kdf_name(h->tls));
		}
	}
}

static void
write_offer(FILE *fp, const char *indent, const struct dhchap_offer *o)
{
	if (o->nhashes) {
		fprintf(fp, "%sdhchap_hashes: [", indent);
		for (int i = 0; i < o->nhashes; i++)
			fprintf(fp, "%s%s", i ? ", " : "",
			    dhchap_hash_name(o->hashes[i]));
		fprintf(fp, "]\n");
	}
	if (o->ngroups) {
		fprintf(fp, "%sdhchap_dhgroups: [", indent);
		for (int i = 0; i < o->ngroups; i++)
			fprintf(fp, "%s%s", i ? ", " : "",
			    dhchap_group_name(o->groups[i]));
		fprintf(fp, "]\n");
	}
}

static bool
hosts_have_inline_secrets(const struct host_list *list)
{
	const struct host *h;

	TAILQ_FOREACH(h, list, entry)
		if ((h->dhchap_secret && h->dhchap_secret[0] != '@') ||
		    (h->dhchap_ctrl_secret &&
		    h->dhchap_ctrl_secret[0] != '@') ||
		    (h->tls && host_tls_spec(h->tls)[0] != '@'))
			return (true);
	return (false);
}

bool
config_has_inline_secrets(const struct config *cf)
{
	const struct subsystem *ss;

	TAILQ_FOREACH(ss, &cf->subsystems, entry)
		if (hosts_have_inline_secrets(&ss->hosts))
			return (true);
	return (hosts_have_inline_secrets(&cf->discovery.hosts));
}

/* States other than the default (optimized), by port then group. */
static void
write_ana(FILE *fp, const struct ana_map *m)
{
	unsigned n = atomic_load(&m->nports);
	bool any = false;

	for (unsigned i = 0; i < n; i++)
		for (uint32_t g = 1; g <= ANA_GRPMAX; g++) {
			uint8_t st = ana_state(m, g, m->port_id[i]);

			if (st == ANA_OPTIMIZED)
				continue;
			if (!any)
				fprintf(fp, "    ana:\n");
			any = true;
			fprintf(fp, "      - { group: %u, port: %u, state: %s }\n",
			    g, m->port_id[i], ana_state_name(st));
		}
}

static void
write_subsystem(FILE *fp, const struct subsystem *ss, bool secrets)
{
	const struct namespace *ns;

	fprintf(fp, "  - nqn: ");
	yq(fp, ss->nqn);
	fprintf(fp, "\n    serial: ");
	yq(fp, ss->serial);
	fprintf(fp, "\n    model: ");
	yq(fp, ss->model);
	fputc('\n', fp);
	if (ss->allow_any_host)
		fprintf(fp, "    hosts: any\n");
	else if (TAILQ_EMPTY(&ss->hosts))
		fprintf(fp, "    hosts: []\n");
	else {
		fprintf(fp, "    hosts:\n");
		write_hosts(fp, 6, &ss->hosts, secrets);
	}
	if (ss->port_ids != NULL) {
		fprintf(fp, "    ports: [");
		for (size_t i = 0; i < ss->nport_ids; i++)
			fprintf(fp, "%s%u", i ? ", " : "", ss->port_ids[i]);
		fprintf(fp, "]\n");
	}
	fprintf(fp, "    max_io_queues: %u\n", ss->max_io_queues);
	if (ss->cntlid_min != 0)
		fprintf(fp, "    cntlid_min: %u\n    cntlid_max: %u\n",
		    ss->cntlid_min, ss->cntlid_max);
	write_offer(fp, "    ", &ss->dhchap);
	write_ana(fp, &ss->ana);
	if (!TAILQ_EMPTY(&ss->namespaces)) {
		fprintf(fp, "    namespaces:\n");
		TAILQ_FOREACH(ns, &ss->namespaces, entry)
			write_namespace(fp, ns);
	}
}

/* Only when it differs from the default: open, no keys, every offer. */
static void
write_discovery(FILE *fp, const struct discovery_access *d, bool secrets)
{
	if (d->allow_any_host && TAILQ_EMPTY(&d->hosts) &&
	    d->dhchap.nhashes == 0 && d->dhchap.ngroups == 0)
		return;
	fprintf(fp, "discovery:\n  allow_any_host: %s\n",
	    d->allow_any_host ? "true" : "false");
	write_offer(fp, "  ", &d->dhchap);
	if (!TAILQ_EMPTY(&d->hosts)) {
		fprintf(fp, "  hosts:\n");
		write_hosts(fp, 4, &d->hosts, secrets);
	}
}

int
config_write(const struct config *cf, FILE *fp, bool secrets)
{
	const struct port *p;
	const struct subsystem *ss;
	const struct referral *r;
	time_t now = time(NULL);
	char date[64];

	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %Z", localtime(&now));
	fprintf(fp, "# nvmfd %s configuration, written %s\n", PACKAGE_VERSION,
	    date);
	fprintf(fp, "workers: %d\n", cf->workers);
	fprintf(fp, "poll_us: %u\n", cf->poll_us);
	fprintf(fp, "mdts: %u\n", cf->mdts);
	fprintf(fp, "max_controllers: %u\n", cf->max_controllers);
	fprintf(fp, "max_discovery_controllers: %u\n",
	    cf->max_disc_controllers);
	fprintf(fp, "max_connections: %u\n", cf->max_connections);
	if (cf->state_dir) {
		fprintf(fp, "state_dir: ");
		yq(fp, cf->state_dir);
		fputc('\n', fp);
	}
	fprintf(fp, "cntlid_min: %u\ncntlid_max: %u\n", cf->cntlid_min,
	    cf->cntlid_max);
	if (cf->ctl_socket || cf->ctl_group || cf->ctl_ro_socket) {
		fprintf(fp, "control:\n");
		if (cf->ctl_socket) {
			fprintf(fp, "  socket: ");
			yq(fp, cf->ctl_socket);
			fputc('\n', fp);
		}
		if (cf->ctl_group) {
			fprintf(fp, "  group: ");
			yq(fp, cf->ctl_group);
			fputc('\n', fp);
		}
		if (cf->ctl_ro_socket) {
			fprintf(fp, "  readonly_socket: ");
			yq(fp, cf->ctl_ro_socket);
			fputc('\n', fp);
		}
	}
	if (cf->metrics_port != 0) {
		fprintf(fp, "metrics:\n  address: ");
		yq(fp, cf->metrics_address);
		fprintf(fp, "\n  port: %u\n", cf->metrics_port);
	}
	fprintf(fp, "ports:\n");
	TAILQ_FOREACH(p, &cf->ports, entry) {
		fprintf(fp, "  - id: %u\n    address: ", p->id);
		yq(fp, p->address);
		fprintf(fp, "\n    port: %s\n", p->service);
		fprintf(fp, "    inline_data_size: %u\n", p->inline_data_size);
		fprintf(fp, "    maxh2cdata: %u\n", p->maxh2cdata);
		fprintf(fp, "    max_queue_depth: %u\n", p->max_queue_depth);
		fprintf(fp, "    header_digest: %s\n",
		    p->header_digest ? "true" : "false");
		fprintf(fp, "    data_digest: %s\n",
		    p->data_digest ? "true" : "false");
		write_offer(fp, "    ", &p->dhchap);
		fprintf(fp, "    tls: %s\n", port_tls_name(p->tls));
	}
	if (!TAILQ_EMPTY(&cf->subsystems)) {
		fprintf(fp, "subsystems:\n");
		TAILQ_FOREACH(ss, &cf->subsystems, entry)
			write_subsystem(fp, ss, secrets);
	}
	write_discovery(fp, &cf->discovery, secrets);
	if (!TAILQ_EMPTY(&cf->referrals)) {
		fprintf(fp, "referrals:\n");
		TAILQ_FOREACH(r, &cf->referrals, entry) {
			fprintf(fp, "  - address: ");
			yq(fp, r->address);
			fprintf(fp, "\n    port: %s\n    port_id: %u\n",
			    r->service, r->port_id);
		}
	}
	return (ferror(fp) ? -1 : 0);
}
