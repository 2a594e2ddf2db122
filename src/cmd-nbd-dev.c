/*
 * attach-nbd and detach-nbd: an NBD export as a kernel /dev/nbdN
 * (nbd-dev.c).  Shown by list-host as the export's nbd_device.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"
#include "ctl-proto.h"
#include "nbd.h"
#include "nbd-dev.h"

/* Seconds, 0 to a week; -1 if not. */
static long
seconds(const char *v)
{
	char *end;
	unsigned long n;

	if (v == NULL)
		return (0);
	errno = 0;
	n = strtoul(v, &end, 10);
	if (*v < '0' || *v > '9' || *end != '\0' || errno || n > 86400 * 7)
		return (-1);
	return ((long)n);
}

int
cmd_attach_nbd(struct cmd_ctx *ctx)
{
	const char *name = ctx->argv[0], *path = ctx->argv[1];
	long timeout = seconds(cmd_opt(ctx, "timeout"));
	long dead = seconds(cmd_opt(ctx, "dead-conn-timeout"));
	struct nbd_export *e;
	char err[256];

	if (timeout < 0 || dead < 0)
		return (cmd_error(ctx, CTL_EUSAGE, "attach-nbd: timeouts are "
		    "seconds, 0 to 604800"));
	if (nbdnl_device_index(path) < 0)
		return (cmd_error(ctx, CTL_EUSAGE, "attach-nbd: %.64s: not an "
		    "NBD device (/dev/nbdN)", path));
	if (*name == '\0' || (e = nbd_export_find(name)) == NULL)
		return (cmd_error(ctx, CTL_ENOENT, "attach-nbd: no export "
		    "'%.300s'", name));
	if (nbd_dev_attach(e, path, (uint64_t)timeout, (uint64_t)dead, err,
	    sizeof(err)) != 0)
		return (cmd_error(ctx, strstr(err, "in use") ? CTL_EBUSY :
		    CTL_ERR, "attach-nbd: %s", err));
	out_object(ctx->out, "attached");
	out_str(ctx->out, "export", "%s", nbd_export_name(e));
	out_str(ctx->out, "device", "%s", nbd_dev_of(e));
	out_end(ctx->out);
	return (CTL_OK);
}

int
cmd_detach_nbd(struct cmd_ctx *ctx)
{
	char err[256];

	if (nbdnl_device_index(ctx->argv[0]) < 0)
		return (cmd_error(ctx, CTL_EUSAGE, "detach-nbd: %.64s: not an "
		    "NBD device (/dev/nbdN)", ctx->argv[0]));
	if (nbd_dev_detach(ctx->argv[0], err, sizeof(err)) != 0)
		return (cmd_error(ctx, strstr(err, "not attached") ?
		    CTL_ENOENT : CTL_ERR, "detach-nbd: %s", err));
	out_object(ctx->out, "detached");
	out_str(ctx->out, "device", "%s", ctx->argv[0]);
	out_end(ctx->out);
	return (CTL_OK);
}
