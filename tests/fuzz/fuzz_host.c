/*
 * libFuzzer target: the host role against a malicious controller.  The
 * input is what a target sends: an ICResp, then CapsuleResps, C2HData and
 * R2Ts, in any framing and with any command IDs, counts and lengths.  The
 * first byte picks the client: even, an association (host.c: Connect,
 * properties, Identify, namespace lists, Set Features, AERs, keep-alive,
 * then an I/O queue); odd, nvmfctl discover (host-discover.c: the
 * discovery log header, its entries in chunks, the header again).
 *
 * The fake target listens on a loopback port the kernel picks.  A feeder
 * thread accepts the host's connections and writes them the input: the
 * bytes before SPLIT to the first connection (the admin queue, kept open),
 * the next part to the second (an I/O queue), and so on; PAUSE waits for
 * the host's next PDU first (a target answers a command once it has it).
 * When the input runs out the feeder hangs up, and the association is
 * deleted: it must be gone within a few seconds, having leaked nothing.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "fuzz-lib.h"
#include "ctl-proto.h"
#include "host.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define SPLIT		FUZZ_SPLIT
#define PAUSE		FUZZ_PAUSE
#define MAX_CONNS	4
#define FUZZ_SUBNQN	"nqn.2026-11.io.nvmfd:ram0"

static int listener;
static char service[16];

struct feed {
	const uint8_t	*data;
	size_t		size;
	atomic_bool	done;
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	(void)argc;
	(void)argv;
	fuzz_log_init();
	fuzz_daemon_start(NULL);	/* the main loop; its port is not used */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(listener, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(listener, 16) != 0 ||
	    getsockname(listener, (struct sockaddr *)&sin, &len) != 0)
		abort();
	snprintf(service, sizeof(service), "%u", ntohs(sin.sin_port));
	return (0);
}

/* Read whatever the host has sent, waiting up to ms for the first bytes;
 * false once the host has hung up. */
static bool
drain(int fd, int ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	char sink[65536];
	ssize_t n;

	while (poll(&pfd, 1, ms) > 0) {
		if ((n = read(fd, sink, sizeof(sink))) == 0 ||
		    (n < 0 && errno != EAGAIN))
			return (false);
		ms = 0;
	}
	return (true);
}

static void
send_all(int fd, const uint8_t *p, size_t n)
{
	struct pollfd pfd = { fd, POLLOUT, 0 };

	while (n > 0 && poll(&pfd, 1, 1000) > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno != EAGAIN)
			return;		/* the host hung up */
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		}
		(void)drain(fd, 0);
	}
}

static int
accept_one(int ms)
{
	struct pollfd pfd = { listener, POLLIN, 0 };
	int fd;

	if (poll(&pfd, 1, ms) <= 0 ||
	    (fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0)
		return (-1);
	return (fd);
}

static void *
feeder(void *arg)
{
	struct feed *f = arg;
	const uint8_t *data = f->data, *end = f->data + f->size;
	int conns[MAX_CONNS], n = 0;

	while (n < MAX_CONNS && data <= end) {
		const uint8_t *split = memmem(data, (size_t)(end - data),
		    SPLIT, strlen(SPLIT));
		const uint8_t *stop = split ? split : end;
		bool first = true;

		bool alive = true;

		if ((conns[n] = accept_one(n == 0 ? 1000 : 200)) < 0)
			break;
		while (alive && data < stop) {
			const uint8_t *pause = memmem(data, (size_t)(stop - data),
			    PAUSE, strlen(PAUSE));
			const uint8_t *upto = pause ? pause : stop;

			if (!first)
				alive = drain(conns[n], 50);
			if (alive)
				send_all(conns[n], data, (size_t)(upto - data));
			data = pause ? pause + strlen(PAUSE) : stop;
			first = false;
		}
		n++;
		if (split == NULL || !alive)
			break;
		data = split + strlen(SPLIT);
	}
	/* Let the host act on the last bytes, then hang up. */
	for (int i = 0; i < n; i++)
		(void)drain(conns[i], 20);
	for (int i = 0; i < n; i++)
		close(conns[i]);
	atomic_store(&f->done, true);
	return (NULL);
}

/* Connections the host makes after the input ran out: refused. */
static void
refuse_pending(void)
{
	int fd;

	while ((fd = accept_one(0)) >= 0)
		close(fd);
}

static void
pump(void)
{
	event_base_loop(main_loop->base, EVLOOP_NONBLOCK);
	usleep(200);
}

static void
association(struct feed *f)
{
	struct host_params p;
	struct host_assoc *a, *b;
	char err[256];
	int id;

	host_params_default(&p);
	snprintf(p.traddr, sizeof(p.traddr), "127.0.0.1");
	snprintf(p.trsvcid, sizeof(p.trsvcid), "%s", service);
	snprintf(p.subnqn, sizeof(p.subnqn), FUZZ_SUBNQN);
	p.nr_io_queues = 1;
	p.queue_size = 8;
	p.kato_s = 1;
	p.reconnect_delay_s = 1;
	p.ctrl_loss_tmo_s = 1;
	if ((a = host_assoc_create(&p, err, sizeof(err))) == NULL)
		abort();
	id = a->id;
	while (!atomic_load(&f->done))
		pump();
	TAILQ_FOREACH(b, &host_assocs, entry)
		if (b->id == id && b->state != AS_DELETING)
			host_assoc_delete(b);
	for (int i = 0; i < 20000 && !TAILQ_EMPTY(&host_assocs); i++) {
		refuse_pending();
		pump();
	}
	if (!TAILQ_EMPTY(&host_assocs))
		abort();	/* a deleted association that never goes */
	/* Its connect thread may still run: it posts to the main loop,
	 * which a discovery input takes away. */
	for (int i = 0; i < 20000 && host_connect_jobs() > 0; i++) {
		refuse_pending();
		pump();
	}
	if (host_connect_jobs() > 0)
		abort();	/* a connect thread that never reports */
}

static void
discovery(void)
{
	char *argv[] = { "discover", "--traddr", "127.0.0.1", "--trsvcid",
	    service, NULL };
	struct loop *saved = main_loop;
	struct evbuffer *text;
	struct cmd_ctx ctx;

	memset(&ctx, 0, sizeof(ctx));
	if ((ctx.out = out_new()) == NULL || (text = evbuffer_new()) == NULL)
		abort();
	/* discover runs in nvmfctl, where there is no main loop. */
	main_loop = NULL;
	if (cmd_execute(&ctx, 5, argv) == CTL_OK)
		(void)out_render(ctx.out, text, false);
	main_loop = saved;
	out_free(ctx.out);
	evbuffer_free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct feed f = { .data = data + 1, .size = size ? size - 1 : 0 };
	pthread_t t;

	if (size < 1)
		return (0);
	atomic_init(&f.done, false);
	if (pthread_create(&t, NULL, feeder, &f) != 0)
		abort();
	if (data[0] % 2 == 0)
		association(&f);
	else
		discovery();
	pthread_join(t, NULL);
	refuse_pending();
	return (0);
}
