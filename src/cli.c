/*
 * nvmfctl: the control client, the same binary as the daemon (argv[0]
 * "nvmfctl", or "nvmfd ctl").  It packs its arguments into one request and
 * prints what the daemon answers; all validation happens in the daemon
 * against the command table, except help, which needs no daemon.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "nvmfd.h"
#include "ctl-proto.h"

#define CLI_TIMEOUT_MS	60000

/* The command list, from our own copy of the command table. */
static void
cli_help(int fd)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL)
		return;
	cmd_help_text(NULL, b);
	evbuffer_write(b, fd);
	evbuffer_free(b);
}

static __dead void
cli_usage(void)
{
	cli_help(STDERR_FILENO);
	exit(CTL_EUSAGE);
}

/* A daemon that has hung up fails the send (no SIGPIPE). */
static int
write_full(int fd, const void *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return (-1);
		buf = (const uint8_t *)buf + n;
		len -= n;
	}
	return (0);
}

static int
cli_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "nvmfctl: %s: path too long\n", path);
		return (-1);
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "nvmfctl: cannot reach nvmfd at %s: %s\n", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return (-1);
	}
	return (fd);
}

/* Send argv as one request; print output; return the result code. */
static int
cli_request(int fd, int argc, char **argv, uint32_t flags)
{
	struct ctl_hdr h = { .magic = CTL_MAGIC, .version = CTL_VERSION,
	    .type = CTL_REQUEST };
	uint32_t n = (uint32_t)argc;
	size_t len = 8;
	uint8_t *req, *p;
	int werr = 0;

	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (len > CTL_MAX_REQUEST) {
		fprintf(stderr, "nvmfctl: request too long\n");
		return (CTL_EUSAGE);
	}
	if ((req = malloc(sizeof(h) + len)) == NULL)
		return (CTL_ERR);
	h.len = (uint32_t)len;
	memcpy(req, &h, sizeof(h));
	memcpy(req + sizeof(h), &flags, 4);
	memcpy(req + sizeof(h) + 4, &n, 4);
	p = req + sizeof(h) + 8;
	for (int i = 0; i < argc; i++) {
		size_t l = strlen(argv[i]) + 1;

		memcpy(p, argv[i], l);
		p += l;
	}
	/* A daemon that refused us may have answered why already. */
	if (write_full(fd, req, sizeof(h) + len) != 0)
		werr = errno;
	free(req);

	for (;;) {
		uint8_t *msg;

		if (fd_read_full(fd, &h, sizeof(h), CLI_TIMEOUT_MS) != 0) {
			if (werr)
				fprintf(stderr, "nvmfctl: lost the daemon: %s\n",
				    strerror(werr));
			else
				fprintf(stderr, "nvmfctl: no answer from the "
				    "daemon\n");
			return (CTL_ECONN);
		}
		if (h.magic != CTL_MAGIC || h.len > 64 * 1024 * 1024) {
			fprintf(stderr, "nvmfctl: garbled answer\n");
			return (CTL_EPROTO);
		}
		if ((msg = malloc(h.len + 1)) == NULL)
			return (CTL_ERR);
		if (fd_read_full(fd, msg, h.len, CLI_TIMEOUT_MS) != 0) {
			free(msg);
			fprintf(stderr, "nvmfctl: truncated answer\n");
			return (CTL_ECONN);
		}
		msg[h.len] = '\0';
		if (h.type == CTL_OUTPUT) {
			fwrite(msg, 1, h.len, stdout);
			free(msg);
			continue;
		}
		if (h.type == CTL_RESULT && h.len >= 4) {
			uint32_t code;

			memcpy(&code, msg, 4);
			if (code != CTL_OK && h.len > 4 && msg[4])
				fprintf(stderr, "nvmfctl: %s\n", msg + 4);
			free(msg);
			fflush(stdout);
			return ((int)code);
		}
		free(msg);
		fprintf(stderr, "nvmfctl: unexpected answer\n");
		return (CTL_EPROTO);
	}
}

static const char *cli_path;	/* the daemon's control socket */

/*
 * connect-all: one connect request to the daemon, with the options the
 * command was given (a discovery address and port are not the target's).
 */
int
cli_connect_remote(struct cmd_ctx *ctx, const char *addr, const char *svc,
    const char *nqn)
{
	char *argv[CTL_MAX_ARGS];
	char ob[32][48];
	int argc = 0, fd, rc;

	argv[argc++] = (char *)"connect";
	argv[argc++] = (char *)"--traddr";
	argv[argc++] = (char *)addr;
	argv[argc++] = (char *)"--trsvcid";
	argv[argc++] = (char *)svc;
	argv[argc++] = (char *)"--nqn";
	argv[argc++] = (char *)nqn;
	for (int i = 0; i < ctx->nopts && argc + 2 < CTL_MAX_ARGS &&
	    i < (int)nitems(ob); i++) {
		const char *n = ctx->opts[i].name;

		if (!strcmp(n, "traddr") || !strcmp(n, "trsvcid") ||
		    !strcmp(n, "nqn") || !strcmp(n, "json") ||
		    !strcmp(n, "persistent"))
			continue;
		snprintf(ob[i], sizeof(ob[i]), "--%s", n);
		argv[argc++] = ob[i];
		if (ctx->opts[i].value != NULL)
			argv[argc++] = (char *)ctx->opts[i].value;
	}
	if ((fd = cli_connect(cli_path)) < 0)
		return (cmd_error(ctx, CTL_ECONN, "cannot reach nvmfd"));
	rc = cli_request(fd, argc, argv, ctx->json ? CTL_F_JSON : 0);
	close(fd);
	if (rc != CTL_OK)
		return (cmd_error(ctx, rc, "connect to %s at %s:%s failed", nqn,
		    addr, svc));
	return (CTL_OK);
}

/* A command nvmfctl answers itself (help), checked by the same table. */
static int
cli_local(int argc, char **argv, uint32_t flags)
{
	struct cmd_ctx ctx;
	int rc;

	memset(&ctx, 0, sizeof(ctx));
	ctx.json = flags & CTL_F_JSON;	/* --json after it: cmd_execute */
	ctx.out = out_new();
	ctx.text = evbuffer_new();
	if (ctx.out == NULL || ctx.text == NULL)
		rc = cmd_error(&ctx, CTL_ERR, "out of memory");
	else if ((rc = cmd_execute(&ctx, argc, argv)) == CTL_OK &&
	    out_render(ctx.out, ctx.text, ctx.json) != 0)
		rc = cmd_error(&ctx, CTL_ERR, "out of memory");
	if (rc == CTL_OK) {
		while (evbuffer_get_length(ctx.text) > 0)
			if (evbuffer_write(ctx.text, STDOUT_FILENO) <= 0) {
				rc = CTL_ERR;
				break;
			}
	} else
		fprintf(stderr, "nvmfctl: %s\n", ctx.err);
	out_free(ctx.out);
	if (ctx.text)
		evbuffer_free(ctx.text);
	return (rc);
}

int
cli_main(int argc, char *argv[])
{
	const char *path = getenv("NVMFD_SOCKET");
	const struct cmd_entry *e;
	uint32_t flags = 0;
	int fd, rc, i;

	if (path == NULL)
		path = CTL_DEFAULT_SOCKET;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--json") == 0 ||
		    strcmp(argv[i], "-j") == 0)
			flags |= CTL_F_JSON;
		else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			cli_help(STDOUT_FILENO);
			return (CTL_OK);
		} else
			cli_usage();
	}
	if (i == argc)
		cli_usage();
	if (strcmp(argv[i], "perf") == 0)
		return (perf_main(argc - i, argv + i));
	e = cmd_find(argv[i]);
	/* Help is answered from our own copy of the command table. */
	for (int k = i + 1; k < argc; k++)
		if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
			char help[] = "help";
			char *hargs[] = { help, argv[i], NULL };

			if (e == NULL) {
				fprintf(stderr, "nvmfctl: unknown command '%s'\n",
				    argv[i]);
				return (CTL_EUSAGE);
			}
			for (int j = i + 1; j < argc; j++)
				if (strcmp(argv[j], "--json") == 0)
					flags |= CTL_F_JSON;
			return (cli_local(2, hargs, flags));
		}
	cli_path = path;
	if (e != NULL && (e->flags & CMD_LOCAL))
		return (cli_local(argc - i, argv + i, flags));
	if (argc - i > CTL_MAX_ARGS) {
		fprintf(stderr, "nvmfctl: too many arguments\n");
		return (CTL_EUSAGE);
	}
	if ((fd = cli_connect(path)) < 0)
		return (CTL_ECONN);
	rc = cli_request(fd, argc - i, argv + i, flags);
	close(fd);
	return (rc);
}
