/*
 * libFuzzer target: the NVMe/TCP controller's receive path, fed whole
 * connections' bytes.  An input is what a host sends on one connection
 * (ICReq, Connect, capsules, H2CData, TermReq, in any order and framing),
 * or on two: the bytes before SPLIT go to a first connection (an admin
 * queue, say), the rest to a second one opened while the first stays up (an
 * I/O queue of the same controller: controller IDs start at 1 for every
 * input).  PAUSE in a connection's bytes lets the daemon answer what came
 * before it (a host waits for an R2T before its H2CData).  The daemon's real
 * code runs on its main loop with the built-in
 * default configuration (a 1 MiB RAM namespace; I/O queues stay on the main
 * loop, there are no workers).  Whatever it sends back is read and dropped.
 *
 * Built as fuzz_auth (FUZZ_AUTH), the subsystem admits only the host
 * FUZZ_HOSTNQN, which must authenticate with DH-HMAC-CHAP (bidirectional,
 * every hash and group offered): after Connect, inputs reach auth.c's
 * Negotiate, Challenge, Reply and Success handlers.
 *
 * A crash, a sanitizer report, a leak or a hang is a finding.
 */
#include "config.h"

#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-lib.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define SPLIT		FUZZ_SPLIT
#define PAUSE		FUZZ_PAUSE

static struct port *port;
static struct subsystem *subsys;

#ifdef FUZZ_AUTH
#define FUZZ_HOSTNQN	"nqn.2014-08.org.nvmexpress:uuid:" \
			    "00000000-0000-4000-8000-000000000001"
/* 0x00..0x1f, SHA-256 transformed; the controller key is another. */
static const char auth_config[] =
	"ports: [{id: 1, address: 127.0.0.1}]\n"
	"subsystems:\n"
	"  - nqn: " NVMFD_DEFAULT_NQN "\n"
	"    dhchap_dhgroups: [null, ffdhe2048, ffdhe3072]\n"
	"    hosts:\n"
	"      - nqn: " FUZZ_HOSTNQN "\n"
	"        dhchap_secret: \"DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGB"
	"kaGxwdHh+KfiaR:\"\n"
	"        dhchap_ctrl_secret: \"DHHC-1:00:VRLbtnN9AQb2WXW3c9+wEf/DRLz0Qu"
	"LdbYvEhwtdWwNf9LrZ:\"\n"
	"    namespaces: [{nsid: 1, backend: ram, size: 1M}]\n";
#endif

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config *cf = NULL;

	(void)argc;
	(void)argv;
	fuzz_log_init();
#ifdef FUZZ_AUTH
	char err[512];

	if ((cf = config_load_string("fuzz.yaml", auth_config, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
#endif
	cf = fuzz_daemon_start(cf);
	port = TAILQ_FIRST(&cf->ports);
	subsys = TAILQ_FIRST(&cf->subsystems);
	return (0);
}

/* A new connection that receives data; returns the host's end. */
static int
connection(const uint8_t *data, size_t size)
{
	const uint8_t *p;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) != 0)
		abort();
	if (qpair_create(main_loop, sv[0], port, "fuzz", "127.0.0.1") == NULL)
		abort();
	while ((p = memmem(data, size, PAUSE, strlen(PAUSE))) != NULL) {
		fuzz_feed(sv[1], data, (size_t)(p - data));
		fuzz_pump(sv[1], 4);
		size -= (size_t)(p - data) + strlen(PAUSE);
		data = p + strlen(PAUSE);
	}
	fuzz_feed(sv[1], data, size);
	fuzz_pump(sv[1], 4);
	return (sv[1]);
}

static void
hang_up(int fd)
{
	shutdown(fd, SHUT_WR);
	fuzz_pump(fd, 4);
	close(fd);
	fuzz_pump(-1, 4);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *split = memmem(data, size, SPLIT, strlen(SPLIT));
	size_t first = split ? (size_t)(split - data) : size;
	int a, b = -1;

	a = connection(data, first);
	if (split != NULL)
		b = connection(split + strlen(SPLIT), size - first -
		    strlen(SPLIT));
	if (b >= 0)
		hang_up(b);
	hang_up(a);
	/* Controllers go a few turns after their queues (and after commands
	 * on pool threads finish): at most 2 s; then the next input starts
	 * from controller ID 1 again. */
	for (int i = 0; i < 2000 && !TAILQ_EMPTY(&subsys->controllers); i++) {
		fuzz_pump(-1, 1);
		usleep(1000);
	}
	if (TAILQ_EMPTY(&subsys->controllers))
		subsys->next_cntlid = 1;
	return (0);
}
