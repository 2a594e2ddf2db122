/*
 * Control commands of the host role: connect, disconnect, disconnect-all
 * and list-host.  A connection comes up in the background; list-host
 * shows its state.  A connection to the discovery NQN is a persistent
 * discovery association (host-follow.c).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "nvmfd.h"
#include "ctl-proto.h"
#include "host.h"
#include "nbd.h"

static int
connect_with(struct cmd_ctx *ctx, struct host_params *p)
{
	struct host_assoc *a;
	char err[256];

	for (int i = 0; i < ctx->nopts; i++) {
		if (strcmp(ctx->opts[i].name, "json") == 0)
			continue;
		if (strcmp(ctx->opts[i].name, "persistent") == 0)
			return (cmd_error(ctx, CTL_EUSAGE, "connect: "
			    "--persistent is for connect-all; a connect to "
			    "the discovery NQN is persistent"));
		if (host_param_set(p, ctx->opts[i].name, ctx->opts[i].value,
		    err, sizeof(err)) != 0)
			return (cmd_error(ctx, CTL_EUSAGE, "connect: %s", err));
	}
	if (host_params_check(p, err, sizeof(err)) != 0)
		return (cmd_error(ctx, CTL_EUSAGE, "connect: %s", err));
	if (p->nbd_tls_required && nbd_server_tls() == PORT_TLS_OFF)
		return (cmd_error(ctx, CTL_EUSAGE, "connect: --nbd-tls required "
		    "needs TLS on the NBD server (host.nbd.tls: optional or "
		    "required, and a tls_psk_file)"));
	if ((a = host_assoc_create(p, err, sizeof(err))) == NULL)
		return (cmd_error(ctx, CTL_EEXIST, "connect: %s", err));
	out_object(ctx->out, "association");
	out_u64(ctx->out, "id", a->id);
	out_str(ctx->out, "nqn", "%s", a->p.subnqn);
	out_str(ctx->out, "state", "%s", host_assoc_state_name(a->state));
	out_end(ctx->out);
	return (CTL_OK);
}

int
cmd_connect(struct cmd_ctx *ctx)
{
	struct host_params p;
	int rc;

	host_params_default(&p);
	rc = connect_with(ctx, &p);
	host_params_clear(&p);
	return (rc);
}

int
cmd_disconnect(struct cmd_ctx *ctx)
{
	const char *key = ctx->argc ? ctx->argv[0] : cmd_opt(ctx, "nqn");
	struct host_assoc *a;
	int n = 0;

	if (key == NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "disconnect: name an "
		    "association: -n NQN or its ID"));
	/* By NQN: every association to that subsystem. */
	while ((a = host_assoc_find(key)) != NULL) {
		host_assoc_delete(a);
		n++;
	}
	if (n == 0)
		return (cmd_error(ctx, CTL_ENOENT, "disconnect: no association "
		    "'%s'", key));
	out_object(ctx->out, "disconnected");
	out_u64(ctx->out, "associations", n);
	out_end(ctx->out);
	return (CTL_OK);
}

int
cmd_reconnect(struct cmd_ctx *ctx)
{
	const char *key = ctx->argc ? ctx->argv[0] : cmd_opt(ctx, "nqn");
	struct host_assoc *a;
	char err[160];
	int n = 0, failed = 0;

	if (key == NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "reconnect: name an "
		    "association: -n NQN or its ID"));
	/* By NQN: every association to that subsystem. */
	TAILQ_FOREACH(a, &host_assocs, entry) {
		if (!host_assoc_matches(a, key))
			continue;
		n++;
		if (host_assoc_reconnect(a, err, sizeof(err)) != 0)
			failed++;
	}
	if (n == 0)
		return (cmd_error(ctx, CTL_ENOENT, "reconnect: no association "
		    "'%s'", key));
	if (failed == n)
		return (cmd_error(ctx, CTL_ERR, "reconnect: %s", err));
	out_object(ctx->out, "reconnecting");
	out_u64(ctx->out, "associations", n - failed);
	out_end(ctx->out);
	return (CTL_OK);
}

int
cmd_disconnect_all(struct cmd_ctx *ctx)
{
	host_assocs_delete_all();
	return (CTL_OK);
}

int
cmd_list_host(struct cmd_ctx *ctx)
{
	struct host_assoc *a;
	char id[40];

	out_list(ctx->out, "associations");
	TAILQ_FOREACH(a, &host_assocs, entry) {
		int depth = a->nioq ? a->qdepth : 0;
		uint64_t held = host_assoc_held(a);

		if (a->state == AS_DELETING)
			continue;
		out_object(ctx->out, NULL);
		out_u64(ctx->out, "id", a->id);
		out_str(ctx->out, "nqn", "%s", a->p.subnqn);
		out_str(ctx->out, "address", "%s", a->p.traddr);
		out_str(ctx->out, "port", "%s", a->p.trsvcid);
		out_str(ctx->out, "state", "%s",
		    host_assoc_state_name(a->state));
		out_u64(ctx->out, "cntlid", a->state == AS_LIVE ? a->cntlid : 0);
		out_u64(ctx->out, "io_queues", a->nioq);
		out_u64(ctx->out, "queue_depth", depth);
		out_u64(ctx->out, "namespaces", a->nns);
		out_u64(ctx->out, "reconnects", a->reconnects);
		out_u64(ctx->out, "held_io", held);
		out_str(ctx->out, "hostnqn", "%s", a->p.hostnqn);
		uuid_format(id, sizeof(id), a->p.hostid);
		out_str(ctx->out, "hostid", "%s", id);
		/* Which keys, never what they are. */
		out_str(ctx->out, "dhchap", "%s", a->p.dhchap_ctrl_secret[0] ?
		    "bidirectional" : a->p.dhchap_secret[0] ? "host" : "none");
		out_bool(ctx->out, "tls", a->p.tls_key[0] != '\0');
		out_str(ctx->out, "error", "%s", a->error);
		out_end(ctx->out);
	}
	out_end(ctx->out);
	out_list(ctx->out, "exports");
	TAILQ_FOREACH(a, &host_assocs, entry) {
		if (a->state == AS_DELETING)
			continue;
		for (int i = 0; i < a->nns; i++) {
			if (a->ns[i].exp == NULL)
				continue;
			out_object(ctx->out, NULL);
			out_u64(ctx->out, "association", a->id);
			nbd_export_describe(a->ns[i].exp, ctx->out);
			out_end(ctx->out);
		}
	}
	out_end(ctx->out);
	return (CTL_OK);
}
