/*
 * ANA control commands: set-ana changes one group's state on one port and
 * tells the hosts on that port; list-ana shows every group as the hosts on
 * each port of the subsystem see it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"
#include "ctl-proto.h"

/* A port by ID, or by ADDR:PORT ([ADDR]:PORT for IPv6) as it listens. */
static struct port *
find_port(struct cmd_ctx *ctx, const char *spec, int *rc)
{
	char addr[64];
	const char *colon = strrchr(spec, ':');
	struct port *p;
	unsigned long id;
	size_t len;

	if (parse_uint(spec, UINT16_MAX, &id) == 0) {
		if ((p = port_find(running_config, id)) == NULL)
			*rc = cmd_error(ctx, CTL_ENOENT, "no port %lu", id);
		return (p);
	}
	if (colon == NULL || (len = colon - spec) == 0 || len >= sizeof(addr)) {
		*rc = cmd_error(ctx, CTL_EUSAGE, "--port: a port ID or "
		    "ADDR:PORT, got '%s'", spec);
		return (NULL);
	}
	if (spec[0] == '[' && spec[len - 1] == ']') {
		spec++;
		len -= 2;
	}
	memcpy(addr, spec, len);
	addr[len] = '\0';
	TAILQ_FOREACH(p, &running_config->ports, entry)
		if (strcmp(p->address, addr) == 0 &&
		    strcmp(p->service, colon + 1) == 0)
			return (p);
	*rc = cmd_error(ctx, CTL_ENOENT, "no port listens on %s port %s",
	    addr, colon + 1);
	return (NULL);
}

/* --group N: 1..ANAGRPMAX; 0 and a message on error. */
uint32_t
cmd_ana_group(struct cmd_ctx *ctx, const char *s, int *rc)
{
	unsigned long g;

	if (parse_uint(s, ANA_GRPMAX, &g) != 0 || g == 0) {
		*rc = cmd_error(ctx, CTL_EUSAGE, "--ana-group/--group: 1 to %d, "
		    "got '%s'", ANA_GRPMAX, s ? s : "");
		return (0);
	}
	return ((uint32_t)g);
}

int
cmd_set_ana(struct cmd_ctx *ctx)
{
	const char *grp_s = cmd_opt(ctx, "group"), *port_s = cmd_opt(ctx, "port");
	const char *state_s = cmd_opt(ctx, "state");
	struct subsystem *ss;
	struct port *p;
	uint32_t grp;
	uint8_t st, old;
	int rc;

	if (grp_s == NULL || port_s == NULL || state_s == NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "set-ana: --group, --port "
		    "and --state are required"));
	if ((ss = find_subsys(ctx, ctx->argv[0], &rc)) == NULL ||
	    (grp = cmd_ana_group(ctx, grp_s, &rc)) == 0 ||
	    (p = find_port(ctx, port_s, &rc)) == NULL)
		return (rc);
	if (!subsystem_on_port(ss, p))
		return (cmd_error(ctx, CTL_EUSAGE, "port %u does not serve %s",
		    p->id, ss->nqn));
	if (ana_state_parse(state_s, &st) != 0)
		return (cmd_error(ctx, CTL_EUSAGE, "--state: optimized, "
		    "non-optimized, inaccessible, persistent-loss or change"));
	old = ana_state(&ss->ana, grp, p->id);
	if ((rc = ana_set(&ss->ana, grp, p->id, st)) < 0)
		return (cmd_error(ctx, CTL_EBUSY, "%s has ANA states on %d "
		    "ports already", ss->nqn, ANA_PORTS));
	if (rc == 1) {
		ana_changed(ss, p->id);
		log_info("%s ANA group %u on port %u: %s -> %s", ss->nqn, grp,
		    p->id, ana_state_name(old), ana_state_name(st));
	}
	out_object(ctx->out, "ana");
	out_str(ctx->out, "subsys", "%s", ss->nqn);
	out_u64(ctx->out, "group", grp);
	out_u64(ctx->out, "port", p->id);
	out_str(ctx->out, "state", "%s", ana_state_name(st));
	out_str(ctx->out, "previous", "%s", ana_state_name(old));
	out_u64(ctx->out, "change_count", ss->ana.chgcnt);
	out_end(ctx->out);
	return (CTL_OK);
}

int
cmd_list_ana(struct cmd_ctx *ctx)
{
	struct subsystem *ss;
	struct namespace *ns;
	struct port *p;
	char nsids[256];
	int rc;

	if ((ss = find_subsys(ctx, ctx->argv[0], &rc)) == NULL)
		return (rc);
	out_list(ctx->out, "ana");
	TAILQ_FOREACH(p, &running_config->ports, entry) {
		if (!subsystem_on_port(ss, p))
			continue;
		for (uint32_t g = 1; g <= ANA_GRPMAX; g++) {
			size_t n = 0;

			if (!ana_group_listed(ss, g))
				continue;
			nsids[0] = '\0';
			TAILQ_FOREACH(ns, &ss->namespaces, entry)
				if (ns->anagrpid == g && n < sizeof(nsids) - 12)
					n += snprintf(nsids + n, sizeof(nsids) - n,
					    "%s%u", n ? "," : "", ns->nsid);
			out_object(ctx->out, NULL);
			out_u64(ctx->out, "port", p->id);
			out_str(ctx->out, "address", "%s:%s", p->address,
			    p->service);
			out_u64(ctx->out, "group", g);
			out_str(ctx->out, "state", "%s",
			    ana_state_name(ana_state(&ss->ana, g, p->id)));
			out_str(ctx->out, "nsids", "%s", n ? nsids : "-");
			out_end(ctx->out);
		}
	}
	out_end(ctx->out);
	return (CTL_OK);
}
