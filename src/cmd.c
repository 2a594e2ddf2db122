/*
 * The control command table: names, arguments, options, usage and the
 * read-only flag live here once.  The daemon validates every request
 * against it; nvmfctl (the same binary) prints help from it without asking
 * the daemon.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "nvmfd.h"
#include "ctl-proto.h"

#define OPT_JSON	{ "json", false, "print JSON instead of a table" }
#define OPT_END		{ NULL, false, NULL }

static const struct cmd_opt no_opts[] = { OPT_JSON, OPT_END };

static const struct cmd_opt subsys_opts[] = {
	{ "serial", true, "serial number (default: derived from the NQN)" },
	{ "model", true, "model number (default: nvmfd)" },
	{ "hosts", true, "'any', or host NQNs separated by commas" },
	{ "ports", true, "port IDs separated by commas (default: every port)" },
	{ "max-io-queues", true, "I/O queues per controller (default 32)" },
	{ "dhchap-hashes", true, "DH-HMAC-CHAP hashes offered, preferred "
	    "first: sha256,sha384,sha512" },
	{ "dhchap-dhgroups", true, "DH groups offered, preferred first: "
	    "ffdhe2048,...,ffdhe8192,null" },
	OPT_JSON, OPT_END
};

static const struct cmd_opt set_subsys_opts[] = {
	{ "serial", true, "serial number" },
	{ "model", true, "model number" },
	{ "allow-any-host", true, "on: any host may connect; off: listed hosts" },
	{ "max-io-queues", true, "I/O queues for new controllers" },
	{ "dhchap-hashes", true, "DH-HMAC-CHAP hashes offered, preferred "
	    "first: sha256,sha384,sha512" },
	{ "dhchap-dhgroups", true, "DH groups offered, preferred first: "
	    "ffdhe2048,...,ffdhe8192,null" },
	OPT_JSON, OPT_END
};

static const struct cmd_opt ns_opts[] = {
	{ "nsid", true, "namespace ID (default: the lowest free one)" },
	{ "backend", true, "ram, file, block or rbd" },
	{ "size", true, "size (ram; file: create or extend), e.g. 1G" },
	{ "path", true, "file or block device (file, block)" },
	{ "block-size", true, "512 or 4096" },
	{ "readonly", false, "write-protect the namespace" },
	{ "direct", false, "O_DIRECT I/O (file, block)" },
	{ "populate", true, "ram: background (default) or lazy" },
	{ "pool", true, "rbd: Ceph pool" },
	{ "image", true, "rbd: image in the pool" },
	{ "rbd-namespace", true, "rbd: namespace within the pool" },
	{ "ceph-user", true, "rbd: cephx id (default: admin)" },
	{ "keyring", true, "rbd: keyring file" },
	{ "ceph-conf", true, "rbd: ceph.conf file" },
	{ "uuid", true, "UUID (default: derived)" },
	{ "nguid", true, "NGUID, 32 hex digits (default: derived)" },
	{ "eui64", true, "EUI-64, 16 hex digits (default: derived)" },
	OPT_JSON, OPT_END
};

static const struct cmd_opt host_opts[] = {
	{ "dhchap-secret", true, "DH-HMAC-CHAP host key: DHHC-1:XX:...: or "
	    "@FILE" },
	{ "dhchap-ctrl-secret", true, "controller key (bidirectional): "
	    "DHHC-1:XX:...: or @FILE" },
	{ "tls-key", true, "TLS PSK, NVMeTLSkey-1:XX:...: or @FILE "
	    "(set-host: none removes it)" },
	{ "tls-kdf", true, "compat (nvme-cli 2.13, default) or rfc8446" },
	{ "from", true, "addresses or prefixes it may connect from, "
	    "comma-separated (any: anywhere)" },
	OPT_JSON, OPT_END
};

static const struct cmd_opt config_opts[] = {
	{ "show-secrets", false, "include secrets given inline (DH-HMAC-CHAP, "
	    "TLS keys)" },
	OPT_JSON, OPT_END
};

static const struct cmd_opt set_ns_opts[] = {
	{ "readonly", true, "on or off" },
	{ "ana-group", true, "move the namespace to this ANA group (1-32)" },
	{ "size", true, "new size (64M, 1G ...): RAM memory or the file's "
	    "length" },
	{ "path", true, "serve a file or block namespace from this file or "
	    "device from now on" },
	OPT_JSON, OPT_END
};

static const struct cmd_opt ana_opts[] = {
	{ "group", true, "ANA group ID (1-32)" },
	{ "port", true, "port ID or ADDR:PORT ([ADDR]:PORT for IPv6)" },
	{ "state", true, "optimized, non-optimized, inaccessible, "
	    "persistent-loss or change" },
	OPT_JSON, OPT_END
};

static const struct cmd_opt inject_opts[] = {
	{ "op", true, "read, write or any (default any)" },
	{ "error", true, "eio, enospc or short (default eio)" },
	{ "count", true, "commands to fail (default 1; 0 clears)" },
	{ "at", true, "io (before the backend, the default) or engine "
	    "(the file I/O engine's completion; fault-injection builds)" },
	OPT_JSON, OPT_END
};

static const struct cmd_opt port_opts[] = {
	{ "id", true, "port ID (default: the lowest free one)" },
	{ "address", true, "IPv4 or IPv6 address to listen on" },
	{ "port", true, "TCP port (default 4420)" },
	{ "inline-data-size", true, "in-capsule data for I/O queues" },
	{ "maxh2cdata", true, "largest H2CData PDU" },
	{ "max-queue-depth", true, "largest queue a host may create" },
	{ "header-digest", true, "on or off: allow header digests" },
	{ "data-digest", true, "on or off: allow data digests" },
	{ "dhchap-hashes", true, "DH-HMAC-CHAP hashes allowed here" },
	{ "dhchap-dhgroups", true, "DH groups allowed here" },
	{ "tls", true, "off, optional or required: TLS 1.3 with a PSK" },
	OPT_JSON, OPT_END
};

static const struct cmd_opt referral_opts[] = {
	{ "address", true, "address of the other discovery service" },
	{ "port", true, "its TCP port (default 8009)" },
	{ "port-id", true, "its port ID (default 1)" },
	OPT_JSON, OPT_END
};

static const struct cmd_opt ctrl_opts[] = {
	{ "subsys", true, "only this subsystem's controllers" },
	OPT_JSON, OPT_END
};

static const struct cmd_opt stats_opts[] = {
	{ "subsys", true, "only this subsystem" },
	{ "queues", false, "per queue pair too" },
	OPT_JSON, OPT_END
};

/* The host role's keys: connect, connect-all and discover alike. */
#define HOST_SEC_OPTS \
	{ "dhchap-secret", true, "DH-HMAC-CHAP host key, when the " \
	    "controller asks: DHHC-1:XX:...: or @FILE" }, \
	{ "dhchap-ctrl-secret", true, "the controller's key: it must prove " \
	    "itself too (bidirectional)" }, \
	{ "tls-key", true, "TLS PSK, NVMeTLSkey-1:XX:...: or @FILE: every " \
	    "queue over TLS 1.3" }, \
	{ "tls-kdf", true, "compat (nvme-cli 2.13, default) or rfc8446" }

static const struct cmd_opt connect_opts[] = {
	{ "transport", true, "tcp (the only one)" },
	{ "traddr", true, "the controller's address" },
	{ "trsvcid", true, "its TCP port (default 4420)" },
	{ "nqn", true, "the subsystem NQN" },
	{ "hostnqn", true, "our host NQN (default: derived from the host "
	    "name)" },
	{ "hostid", true, "our host ID, a UUID (default: derived)" },
	{ "nr-io-queues", true, "I/O queues (default 1)" },
	{ "queue-size", true, "entries per I/O queue (default 128)" },
	{ "keep-alive-tmo", true, "KATO in seconds (default 5, 0 = off)" },
	{ "reconnect-delay", true, "seconds between reconnects (default 2)" },
	{ "ctrl-loss-tmo", true, "seconds before a lost controller's I/O "
	    "fails (default 600)" },
	{ "fast_io_fail_tmo", true, "seconds before held I/O fails "
	    "(default: at ctrl-loss-tmo)" },
	{ "hdr-digest", false, "header digests" },
	{ "data-digest", false, "data digests" },
	{ "export-prefix", true, "NBD export names PREFIX/NSID (default: "
	    "the NQN)" },
	{ "nbd-tls", true, "required: its NBD exports only over TLS; "
	    "optional: as host.nbd.tls says (the default)" },
	{ "persistent", false, "connect-all: then stay connected to the "
	    "discovery controller and follow its log" },
	{ "nbd-device", true, "serve the first namespace as this kernel "
	    "device, /dev/nbdN (Linux)" },
	{ "nbd-timeout", true, "the kernel's request timeout for it, seconds "
	    "(default 0: none, nvmfd's timeouts apply)" },
	HOST_SEC_OPTS,
	OPT_JSON, OPT_END
};

static const struct cmd_opt attach_nbd_opts[] = {
	{ "timeout", true, "the kernel's request timeout, seconds (default "
	    "0: none, nvmfd's timeouts apply)" },
	{ "dead-conn-timeout", true, "seconds the kernel waits for a dead "
	    "connection to come back (default 0)" },
	OPT_JSON, OPT_END
};

static const struct cmd_opt discover_opts[] = {
	{ "transport", true, "tcp (the only one)" },
	{ "traddr", true, "the discovery controller's address" },
	{ "trsvcid", true, "its TCP port (default 8009)" },
	{ "hostnqn", true, "our host NQN (default: derived from the host "
	    "name)" },
	{ "hostid", true, "our host ID, a UUID (default: derived)" },
	{ "hdr-digest", false, "header digests" },
	{ "data-digest", false, "data digests" },
	HOST_SEC_OPTS,
	OPT_JSON, OPT_END
};

static const struct cmd_opt disconnect_opts[] = {
	{ "nqn", true, "every association to this subsystem" },
	OPT_JSON, OPT_END
};

/* nvme-cli's short options, where the concept is the same. */
static const struct cmd_short {
	const char	*cmd;
	char		letter;
	const char	*opt;
} short_opts[] = {
	{ "connect", 't', "transport" }, { "connect", 'a', "traddr" },
	{ "connect", 's', "trsvcid" }, { "connect", 'n', "nqn" },
	{ "connect", 'i', "nr-io-queues" }, { "connect", 'Q', "queue-size" },
	{ "connect", 'k', "keep-alive-tmo" },
	{ "connect", 'c', "reconnect-delay" },
	{ "connect", 'l', "ctrl-loss-tmo" }, { "connect", 'g', "hdr-digest" },
	{ "connect", 'G', "data-digest" }, { "disconnect", 'n', "nqn" },
	{ "reconnect", 'n', "nqn" },
	{ "discover", 't', "transport" }, { "discover", 'a', "traddr" },
	{ "discover", 's', "trsvcid" }, { "discover", 'g', "hdr-digest" },
	{ "discover", 'G', "data-digest" },
	{ "connect", 'S', "dhchap-secret" },
	{ "connect", 'C', "dhchap-ctrl-secret" },
	{ "connect-all", 'S', "dhchap-secret" },
	{ "connect-all", 'C', "dhchap-ctrl-secret" },
	{ "discover", 'S', "dhchap-secret" },
	{ "discover", 'C', "dhchap-ctrl-secret" },
	{ "connect-all", 't', "transport" }, { "connect-all", 'a', "traddr" },
	{ "connect-all", 's', "trsvcid" },
	{ "connect-all", 'i', "nr-io-queues" },
	{ "connect-all", 'Q', "queue-size" },
	{ "connect-all", 'k', "keep-alive-tmo" },
	{ "connect-all", 'c', "reconnect-delay" },
	{ "connect-all", 'l', "ctrl-loss-tmo" },
	{ "connect-all", 'g', "hdr-digest" },
	{ "connect-all", 'G', "data-digest" },
	{ "connect-all", 'p', "persistent" },
};

static const char *
short_opt(const struct cmd_entry *e, char letter)
{
	for (size_t i = 0; i < nitems(short_opts); i++)
		if (short_opts[i].letter == letter &&
		    strcmp(short_opts[i].cmd, e->name) == 0)
			return (short_opts[i].opt);
	return (NULL);
}

static char
short_letter(const struct cmd_entry *e, const char *opt)
{
	for (size_t i = 0; i < nitems(short_opts); i++)
		if (strcmp(short_opts[i].opt, opt) == 0 &&
		    strcmp(short_opts[i].cmd, e->name) == 0)
			return (short_opts[i].letter);
	return ('\0');
}

static const struct cmd_entry cmd_table[] = {
	{ "help", "[COMMAND]", "list the commands, or describe one",
	    0, 1, no_opts, CMD_READONLY | CMD_LOCAL, cmd_help },
	{ "version", "", "the daemon's version",
	    0, 0, no_opts, CMD_READONLY, cmd_version },
	{ "list-subsys", "", "list subsystems",
	    0, 0, no_opts, CMD_READONLY, cmd_list_subsys },
	{ "show-subsys", "NQN", "show a subsystem with its namespaces, hosts "
	    "and controllers", 1, 1, no_opts, CMD_READONLY, cmd_show_subsys },
	{ "add-subsys", "NQN [options]", "add a subsystem",
	    1, 1, subsys_opts, 0, cmd_add_subsys },
	{ "set-subsys", "NQN [options]", "change a subsystem (the discovery "
	    "NQN: --allow-any-host and the DH-HMAC-CHAP offers)",
	    1, 1, set_subsys_opts, 0, cmd_set_subsys },
	{ "del-subsys", "NQN", "remove a subsystem (its controllers go)",
	    1, 1, no_opts, 0, cmd_del_subsys },
	{ "list-ns", "NQN", "list a subsystem's namespaces",
	    1, 1, no_opts, CMD_READONLY, cmd_list_ns },
	{ "add-ns", "NQN --backend TYPE [options]", "add a namespace; connected "
	    "hosts are told", 1, 1, ns_opts, 0, cmd_add_ns },
	{ "set-ns", "NQN NSID [--readonly on|off] [--ana-group N] "
	    "[--size SIZE] [--path PATH]", "change a namespace; connected "
	    "hosts are told",
	    2, 2, set_ns_opts, 0, cmd_set_ns },
	{ "rescan-ns", "NQN [NSID]", "take the size of file and block "
	    "namespaces' storage again; hosts are told of changes",
	    1, 2, no_opts, 0, cmd_rescan_ns },
	{ "list-ana", "NQN", "ANA group states as hosts on each port see them",
	    1, 1, no_opts, CMD_READONLY, cmd_list_ana },
	{ "set-ana", "NQN --group N --port PORT --state STATE", "set an ANA "
	    "group's state on a port; its hosts are told", 1, 1, ana_opts, 0,
	    cmd_set_ana },
	{ "del-ns", "NQN NSID", "remove a namespace; connected hosts are told",
	    2, 2, no_opts, 0, cmd_del_ns },
	{ "inject-error", "NQN NSID [--op OP] [--error E] [--count N] "
	    "[--at WHERE]",
	    "fail the next reads/writes of a namespace (testing)",
	    2, 2, inject_opts, 0, cmd_inject_error },
	{ "list-hosts", "NQN", "list the hosts allowed on a subsystem (the "
	    "discovery NQN: hosts with discovery keys)",
	    1, 1, no_opts, CMD_READONLY, cmd_list_hosts },
	{ "add-host", "NQN HOSTNQN [options]", "allow a host on a subsystem, "
	    "or give it keys for discovery (the discovery NQN)",
	    2, 2, host_opts, 0, cmd_add_host },
	{ "set-host", "NQN HOSTNQN [options]", "change or rotate a host's "
	    "keys; live associations keep going", 2, 2, host_opts, 0,
	    cmd_set_host },
	{ "del-host", "NQN HOSTNQN", "disallow a host (its controllers go)",
	    2, 2, no_opts, 0, cmd_del_host },
	{ "list-ports", "", "list ports",
	    0, 0, no_opts, CMD_READONLY, cmd_list_ports },
	{ "add-port", "--address ADDR [options]", "add a port and listen on it",
	    0, 0, port_opts, 0, cmd_add_port },
	{ "del-port", "ID", "remove a port (its associations go)",
	    1, 1, no_opts, 0, cmd_del_port },
	{ "list-referrals", "", "list discovery referrals",
	    0, 0, no_opts, CMD_READONLY, cmd_list_referrals },
	{ "add-referral", "--address ADDR [options]", "add a discovery referral",
	    0, 0, referral_opts, 0, cmd_add_referral },
	{ "del-referral", "ADDRESS [PORT]", "remove a discovery referral",
	    1, 2, no_opts, 0, cmd_del_referral },
	{ "list-ctrl", "[options]", "list associations (controllers)",
	    0, 0, ctrl_opts, CMD_READONLY, cmd_list_ctrl },
	{ "terminate", "CNTLID [options]", "tear down an association",
	    1, 1, ctrl_opts, 0, cmd_terminate },
	{ "stats", "[options]", "command, byte, error and latency counters",
	    0, 0, stats_opts, CMD_READONLY, cmd_stats },
	{ "connect", "-t tcp -a ADDR -s SVCID -n NQN [options]", "connect to a "
	    "remote controller; its namespaces become NBD exports",
	    0, 0, connect_opts, 0, cmd_connect },
	{ "disconnect", "-n NQN | ID", "disconnect from a remote controller "
	    "(orderly shutdown)", 0, 1, disconnect_opts, 0, cmd_disconnect },
	{ "disconnect-all", "", "disconnect every remote controller",
	    0, 0, no_opts, 0, cmd_disconnect_all },
	{ "reconnect", "-n NQN | ID", "rebuild an association now; a failed "
	    "one gets a new ctrl-loss-tmo", 0, 1, disconnect_opts, 0,
	    cmd_reconnect },
	{ "discover", "-t tcp -a ADDR [-s SVCID] [options]", "read a discovery "
	    "controller's log (run by nvmfctl)", 0, 0, discover_opts,
	    CMD_READONLY | CMD_LOCAL, cmd_discover },
	{ "connect-all", "-t tcp -a ADDR [-s SVCID] [options]", "connect to "
	    "every NVM subsystem a discovery log and its referrals list", 0, 0, connect_opts,
	    CMD_LOCAL, cmd_discover },
	{ "list-host", "", "remote controllers, their state and NBD exports",
	    0, 0, no_opts, CMD_READONLY, cmd_list_host },
	{ "attach-nbd", "EXPORT /dev/nbdN [options]", "serve an NBD export as "
	    "a kernel NBD device (Linux)", 2, 2, attach_nbd_opts, 0,
	    cmd_attach_nbd },
	{ "detach-nbd", "/dev/nbdN", "disconnect a kernel NBD device nvmfd "
	    "serves", 1, 1, no_opts, 0, cmd_detach_nbd },
	{ "show-config", "", "print the running configuration as YAML",
	    0, 0, config_opts, CMD_READONLY, cmd_show_config },
	{ "save", "[FILE]", "write the running configuration as YAML (default: "
	    "the file it was loaded from)", 0, 1, config_opts, 0, cmd_save },
	{ "reload", "", "apply the configuration file again",
	    0, 0, no_opts, 0, cmd_reload },
};

const struct cmd_entry *
cmd_find(const char *name)
{
	for (size_t i = 0; i < nitems(cmd_table); i++)
		if (strcmp(cmd_table[i].name, name) == 0)
			return (&cmd_table[i]);
	return (NULL);
}

int
cmd_error(struct cmd_ctx *ctx, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
	va_end(ap);
	return (code);
}

const char *
cmd_opt(struct cmd_ctx *ctx, const char *name)
{
	for (int i = 0; i < ctx->nopts; i++)
		if (strcmp(ctx->opts[i].name, name) == 0)
			return (ctx->opts[i].value ? ctx->opts[i].value : "");
	return (NULL);
}

/* "on"/"off" style switches; -1 for anything else. */
int
cmd_onoff(const char *v)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes") ||
	    !strcmp(v, "1"))
		return (1);
	if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no") ||
	    !strcmp(v, "0"))
		return (0);
	return (-1);
}

static void
usage_text(const struct cmd_entry *e, struct evbuffer *b)
{
	evbuffer_add_printf(b, "usage: nvmfctl %s%s%s\n  %s\n", e->name,
	    *e->args ? " " : "", e->args, e->help);
	for (const struct cmd_opt *o = e->opts; o->name; o++) {
		char opt[64], letter = short_letter(e, o->name);

		/* At least one space, however long the option. */
		snprintf(opt, sizeof(opt), "%s%s", o->name,
		    o->has_value ? " VALUE" : "");
		if (letter)
			evbuffer_add_printf(b, "  -%c, --%-17s %s\n", letter,
			    opt, o->help);
		else
			evbuffer_add_printf(b, "  --%-21s %s\n", opt, o->help);
	}
}

/* The whole list, or one command's usage (also used by nvmfctl alone). */
void
cmd_help_text(const char *name, struct evbuffer *b)
{
	const struct cmd_entry *e;

	if (name != NULL && (e = cmd_find(name)) != NULL) {
		usage_text(e, b);
		return;
	}
	evbuffer_add_printf(b, "usage: nvmfctl [-s socket] COMMAND [ARGS] "
	    "[--json]\n\ncommands:\n");
	for (size_t i = 0; i < nitems(cmd_table); i++)
		evbuffer_add_printf(b, "  %-15s %s\n", cmd_table[i].name,
		    cmd_table[i].help);
	evbuffer_add_printf(b, "  %-15s %s\n", "perf",
	    "NVMe/TCP load generator (runs in nvmfctl)");
	evbuffer_add_printf(b, "\n'nvmfctl COMMAND --help' describes one.\n");
}

/* The same as cmd_help_text, for scripts. */
static void
help_json(const char *name, struct out *o)
{
	const struct cmd_entry *e;

	if (name != NULL && (e = cmd_find(name)) != NULL) {
		out_object(o, "command");
		out_str(o, "name", "%s", e->name);
		out_str(o, "args", "%s", e->args);
		out_str(o, "help", "%s", e->help);
		out_bool(o, "readonly", e->flags & CMD_READONLY);
		out_list(o, "options");
		for (const struct cmd_opt *op = e->opts; op->name; op++) {
			out_object(o, NULL);
			out_str(o, "name", "--%s", op->name);
			out_bool(o, "value", op->has_value);
			out_str(o, "help", "%s", op->help);
			out_end(o);
		}
		out_end(o);
		out_end(o);
		return;
	}
	out_list(o, "commands");
	for (size_t i = 0; i < nitems(cmd_table); i++) {
		out_object(o, NULL);
		out_str(o, "name", "%s", cmd_table[i].name);
		out_str(o, "args", "%s", cmd_table[i].args);
		out_str(o, "help", "%s", cmd_table[i].help);
		out_end(o);
	}
	out_object(o, NULL);
	out_str(o, "name", "perf");
	out_str(o, "args", "[options]");
	out_str(o, "help", "NVMe/TCP load generator (runs in nvmfctl)");
	out_end(o);
	out_end(o);
}

int
cmd_help(struct cmd_ctx *ctx)
{
	if (ctx->argc == 1 && cmd_find(ctx->argv[0]) == NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "unknown command '%s'",
		    ctx->argv[0]));
	if (ctx->json)
		help_json(ctx->argc ? ctx->argv[0] : NULL, ctx->out);
	else
		cmd_help_text(ctx->argc ? ctx->argv[0] : NULL, ctx->text);
	return (CTL_OK);
}

/*
 * Split argv into positionals and --options as the table allows, then run
 * the handler.  Returns a ctl_code; ctx->err says why on failure.
 */
int
cmd_execute(struct cmd_ctx *ctx, int argc, char **argv)
{
	const struct cmd_entry *e;
	char *pos[CTL_MAX_ARGS];
	static char shortbuf[32][40];
	int npos = 0, nshort = 0;

	if (argc < 1)
		return (cmd_error(ctx, CTL_EUSAGE, "no command given"));
	if ((e = cmd_find(argv[0])) == NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "unknown command '%s' "
		    "(try 'nvmfctl help')", argv[0]));
	ctx->entry = e;
	if (ctx->readonly_client && !(e->flags & CMD_READONLY))
		return (cmd_error(ctx, CTL_EPERM, "%s: this socket only allows "
		    "read-only commands", e->name));
	for (int i = 1; i < argc; i++) {
		const struct cmd_opt *o;
		char *name = argv[i], *eq;

		/* -X: the option whose short name it is, if any. */
		if (name[0] == '-' && name[1] != '-' && name[1] != '\0' &&
		    name[2] == '\0' && short_opt(e, name[1]) != NULL) {
			snprintf(shortbuf[nshort], sizeof(shortbuf[0]), "--%s",
			    short_opt(e, name[1]));
			name = shortbuf[nshort];
			nshort = (nshort + 1) % nitems(shortbuf);
		}
		if (strncmp(name, "--", 2) != 0 || name[2] == '\0') {
			if (npos == (int)nitems(pos))
				return (cmd_error(ctx, CTL_EUSAGE,
				    "too many arguments"));
			pos[npos++] = argv[i];
			continue;
		}
		name += 2;
		if ((eq = strchr(name, '=')) != NULL)
			*eq = '\0';
		for (o = e->opts; o->name && strcmp(o->name, name); o++)
			;
		if (o->name == NULL)
			return (cmd_error(ctx, CTL_EUSAGE, "%s: unknown option "
			    "--%s (try 'nvmfctl %s --help')", e->name, name,
			    e->name));
		if (ctx->nopts == (int)nitems(ctx->opts))
			return (cmd_error(ctx, CTL_EUSAGE, "too many options"));
		ctx->opts[ctx->nopts].name = o->name;
		ctx->opts[ctx->nopts].value = NULL;
		if (o->has_value) {
			if (eq)
				ctx->opts[ctx->nopts].value = eq + 1;
			else if (i + 1 < argc)
				ctx->opts[ctx->nopts].value = argv[++i];
			else
				return (cmd_error(ctx, CTL_EUSAGE, "%s: --%s "
				    "needs a value", e->name, o->name));
		} else if (eq)
			return (cmd_error(ctx, CTL_EUSAGE, "%s: --%s takes no "
			    "value", e->name, o->name));
		for (int k = 0; k < ctx->nopts; k++)
			if (ctx->opts[k].name == o->name)
				return (cmd_error(ctx, CTL_EUSAGE, "%s: --%s "
				    "given twice", e->name, o->name));
		ctx->nopts++;
	}
	if (npos < e->min_args || npos > e->max_args)
		return (cmd_error(ctx, CTL_EUSAGE, "usage: nvmfctl %s%s%s",
		    e->name, *e->args ? " " : "", e->args));
	ctx->argc = npos;
	ctx->argv = pos;
	if (cmd_opt(ctx, "json") != NULL)
		ctx->json = true;
	return (e->exec(ctx));
}
