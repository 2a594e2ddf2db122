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
 * A crash, a sanitizer report, a leak or a hang is a finding.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "nvmfd.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define SPLIT		"NVMFUZZ2"
#define PAUSE		"NVMFUZZ/"

static struct port *port;
static struct subsystem *subsys;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config *cf;
	struct namespace *ns;

	(void)argc;
	(void)argv;
	/* syslog: keep libFuzzer's output readable; NVMFD_FUZZ_LOG=1 shows
	 * the daemon's debug log on stderr, to follow one input. */
	if (getenv("NVMFD_FUZZ_LOG") != NULL)
		log_init(1, 1);
	else
		log_init(0, 0);
	if ((cf = config_default()) == NULL)
		abort();
	ns = TAILQ_FIRST(&TAILQ_FIRST(&cf->subsystems)->namespaces);
	ns->size = 1 << 20;
	port = TAILQ_FIRST(&cf->ports);
	subsys = TAILQ_FIRST(&cf->subsystems);
	snprintf(port->service, sizeof(port->service), "0");	/* any */
	running_config = cf;
	signal(SIGPIPE, SIG_IGN);
	if (loops_init(0, cf->mdts) != 0 || registry_start(cf) != 0)
		abort();
	return (0);
}

/* Run the main loop's ready callbacks; true if the peer has more to read. */
static void
pump(int peer, int rounds)
{
	char sink[65536];

	for (int i = 0; i < rounds; i++) {
		event_base_loop(main_loop->base, EVLOOP_NONBLOCK);
		while (peer >= 0 && read(peer, sink, sizeof(sink)) > 0)
			;
	}
}

/* Send data in pieces, with the loop running between them, as a network
 * would deliver it; a daemon that stops reading must not stall us. */
static void
feed(int fd, const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		ssize_t n = write(fd, data + off, MINIMUM(size - off, 4096));

		if (n < 0 && errno != EAGAIN)
			break;
		if (n > 0)
			off += (size_t)n;
		pump(fd, 2);
	}
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
		feed(sv[1], data, (size_t)(p - data));
		pump(sv[1], 4);
		size -= (size_t)(p - data) + strlen(PAUSE);
		data = p + strlen(PAUSE);
	}
	feed(sv[1], data, size);
	pump(sv[1], 4);
	return (sv[1]);
}

static void
hang_up(int fd)
{
	shutdown(fd, SHUT_WR);
	pump(fd, 4);
	close(fd);
	pump(-1, 4);
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
		pump(-1, 1);
		usleep(1000);
	}
	if (TAILQ_EMPTY(&subsys->controllers))
		subsys->next_cntlid = 1;
	return (0);
}
