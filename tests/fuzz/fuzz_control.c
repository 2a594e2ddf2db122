/*
 * libFuzzer target: the control socket.  An input is what one nvmfctl
 * client sends: framed requests (ctl-proto.h) whose arguments the command
 * table parses and whose commands run against the daemon's running
 * configuration (the built-in default: one subsystem, a RAM namespace).
 * The daemon's real control.c accepts the client on a socket in a private
 * directory.
 *
 * Commands that would reach outside the process are not fed: inputs that
 * name connect, discover, add-port, save, attach-nbd, a path option or a
 * '/' are skipped, so the fuzzer never makes the host side dial an
 * address, the daemon listen on a port, write a file or configure a
 * kernel NBD device.  The configuration lives on from input to input, as it does
 * in a daemon that many clients change; the subsystems fuzzing adds are
 * removed after each input so it stays small.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "fuzz-lib.h"
#include "ctl-proto.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char sock_path[128];
static const char *const skipped[] = {
	"connect", "discover", "add-port", "save", "attach-nbd", "path", "/",
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir;

	(void)argc;
	(void)argv;
	fuzz_log_init();
	dir = fuzz_tmpdir("ctl");
	snprintf(sock_path, sizeof(sock_path), "%s/ctl.sock", dir);
	fuzz_daemon_start(NULL);
	if (control_start(sock_path, NULL, NULL) != 0)
		abort();
	return (0);
}

/* Back to the default subsystem alone, and no injected errors left. */
static void
tidy(void)
{
	struct subsystem *ss, *first;
	char *argv[3], nqn[NVMFD_NQN_MAX + 1];
	struct cmd_ctx ctx;

	first = TAILQ_FIRST(&running_config->subsystems);
	while ((ss = TAILQ_LAST(&running_config->subsystems,
	    subsystem_list)) != NULL && ss != first) {
		snprintf(nqn, sizeof(nqn), "%s", ss->nqn);
		argv[0] = "del-subsys";
		argv[1] = nqn;
		argv[2] = NULL;
		memset(&ctx, 0, sizeof(ctx));
		if ((ctx.out = out_new()) == NULL)
			abort();
		if (cmd_execute(&ctx, 2, argv) != CTL_OK)
			abort();	/* a subsystem that will not go */
		out_free(ctx.out);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd;

	for (size_t i = 0; i < nitems(skipped); i++)
		if (memmem(data, size, skipped[i], strlen(skipped[i])) != NULL)
			return (0);
	fd = fuzz_unix_connect(sock_path);
	fuzz_pump(fd, 1);
	fuzz_feed(fd, data, size);
	shutdown(fd, SHUT_WR);
	fuzz_pump(fd, 4);
	close(fd);
	fuzz_pump(-1, 4);
	tidy();
	return (0);
}
