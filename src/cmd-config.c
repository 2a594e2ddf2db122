/*
 * Configuration commands: show-config and save write the running state as
 * YAML (config-write.c); reload applies the file again (reload.c).
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "nvmfd.h"
#include "ctl-proto.h"

int
cmd_show_config(struct cmd_ctx *ctx)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp;

	if (cmd_opt(ctx, "show-secrets") != NULL && ctx->readonly_client)
		return (cmd_error(ctx, CTL_EPERM, "--show-secrets: not on the "
		    "read-only socket"));
	if ((fp = open_memstream(&text, &len)) == NULL)
		return (cmd_error(ctx, CTL_ERR, "out of memory"));
	if (config_write(running_config, fp,
	    cmd_opt(ctx, "show-secrets") != NULL) != 0 || fclose(fp) != 0) {
		free(text);
		return (cmd_error(ctx, CTL_ERR, "cannot format the configuration"));
	}
	/* JSON: the YAML text as one string, so the output still parses. */
	if (ctx->json)
		out_str(ctx->out, "config", "%s", text);
	else
		evbuffer_add(ctx->text, text, len);
	free(text);
	return (CTL_OK);
}

/* Write to FILE.tmp and rename, so a crash never leaves half a file. */
int
cmd_save(struct cmd_ctx *ctx)
{
	const char *path = ctx->argc ? ctx->argv[0] : running_config->path;
	bool secrets = cmd_opt(ctx, "show-secrets") != NULL;
	char tmp[4096];
	struct stat st;
	FILE *fp;
	int fd;

	if (path == NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "the daemon runs on its "
		    "built-in default configuration: name a file to save to"));
	if (path[0] != '/')
		return (cmd_error(ctx, CTL_EUSAGE, "%s: give an absolute path "
		    "(it is written by the daemon)", path));
	/* Leaving secrets out would load back as hosts without keys. */
	if (!secrets && config_has_inline_secrets(running_config))
		return (cmd_error(ctx, CTL_EUSAGE, "the configuration holds "
		    "secrets given inline (DH-HMAC-CHAP, TLS keys): pass "
		    "--show-secrets to "
		    "write them into %s, or give them as key files (@PATH)",
		    path));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= sizeof(tmp))
		return (cmd_error(ctx, CTL_EUSAGE, "path too long"));
	if ((fd = mkstemp(tmp)) == -1)
		return (cmd_error(ctx, CTL_ERR, "%s: %s", tmp, strerror(errno)));
	/* mkstemp made it 0600: keep the mode and owner of the file it
	 * replaces (a group that may read it, say). */
	if (stat(path, &st) == 0) {
		(void)fchown(fd, st.st_uid, st.st_gid);
		(void)fchmod(fd, st.st_mode & (secrets ? 07700 : 07777));
	}
	if ((fp = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlink(tmp);
		return (cmd_error(ctx, CTL_ERR, "%s: %s", tmp, strerror(errno)));
	}
	if (config_write(running_config, fp, secrets) != 0 || fflush(fp) != 0 ||
	    fsync(fileno(fp)) != 0) {
		int e = errno;

		fclose(fp);
		unlink(tmp);
		return (cmd_error(ctx, CTL_ERR, "%s: %s", path, strerror(e)));
	}
	fclose(fp);
	if (rename(tmp, path) != 0) {
		int e = errno;

		unlink(tmp);
		return (cmd_error(ctx, CTL_ERR, "%s: %s", path, strerror(e)));
	}
	log_info("configuration saved to %s", path);
	out_object(ctx->out, "saved");
	out_str(ctx->out, "path", "%s", path);
	out_end(ctx->out);
	return (CTL_OK);
}

static void
reload_answer(int rc, const char *err, void *arg)
{
	struct cmd_ctx *ctx = arg;

	if (rc != 0)
		cmd_error(ctx, CTL_ERR, "%s", err);
	cmd_done(ctx, rc == 0 ? CTL_OK : CTL_ERR);
}

int
cmd_reload(struct cmd_ctx *ctx)
{
	switch (config_reload(ctx->err, sizeof(ctx->err), reload_answer,
	    ctx)) {
	case 0:
		return (CTL_OK);
	case 1:
		return (CMD_PENDING);
	default:
		return (CTL_ERR);
	}
}
