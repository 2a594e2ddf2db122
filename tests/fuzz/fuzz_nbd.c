/*
 * libFuzzer target: the NBD server.  An input is what one NBD client sends:
 * the handshake (client flags, options with any lengths and names) and
 * transmission requests (any command, flags, offset, length, payload).
 * The export behind it is real: nvmfd's host role connected over loopback
 * TCP to nvmfd's own target in this process (the built-in default, a
 * 1 MiB RAM namespace), everything on the main loop; TLS is optional,
 * with the PSK make_seeds.py's ClientHello offers.  PAUSE in an input
 * lets the server answer what came before first.  Replies are read and
 * dropped; after the input the client hangs up and the server must have
 * let go of the connection and its requests.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "fuzz-lib.h"
#include "host.h"
#include "nbd.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define PAUSE		FUZZ_PAUSE

static char sock_path[128];
static char psk_path[128];

/* TLS optional, with the key make_seeds.py's ClientHello offers. */
static void
psk_file(const char *dir)
{
	FILE *f;

	snprintf(psk_path, sizeof(psk_path), "%s/nbd.psk", dir);
	if ((f = fopen(psk_path, "w")) == NULL ||
	    fchmod(fileno(f), 0600) != 0)
		abort();
	fprintf(f, "fuzz:");
	for (int i = 0; i < 32; i++)
		fprintf(f, "11");
	fprintf(f, "\n");
	fclose(f);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nbd_settings st = { .socket = sock_path,
	    .tls = PORT_TLS_OPTIONAL, .tls_psk_file = psk_path };
	struct host_params p;
	struct host_assoc *a;
	struct config *cf;
	struct port *port;
	const char *dir;
	char err[256];

	(void)argc;
	(void)argv;

	fuzz_log_init();
	dir = fuzz_tmpdir("nbd");
	snprintf(sock_path, sizeof(sock_path), "%s/nbd.sock", dir);
	psk_file(dir);
	cf = fuzz_daemon_start(NULL);
	port = TAILQ_FIRST(&cf->ports);
	if (nbd_server_start(&st, err, sizeof(err)) != 0)
		abort();

	host_params_default(&p);
	snprintf(p.traddr, sizeof(p.traddr), "127.0.0.1");
	snprintf(p.trsvcid, sizeof(p.trsvcid), "%s", port->service);
	snprintf(p.subnqn, sizeof(p.subnqn), "%s",
	    TAILQ_FIRST(&cf->subsystems)->nqn);
	snprintf(p.export_prefix, sizeof(p.export_prefix), "fuzz");
	p.kato_s = 0;
	if ((a = host_assoc_create(&p, err, sizeof(err))) == NULL)
		abort();
	for (int i = 0; i < 10000 && a->state != AS_LIVE; i++) {
		fuzz_pump(-1, 1);
		usleep(1000);
	}
	if (a->state != AS_LIVE)
		abort();
	return (0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p;
	int fd;

	fd = fuzz_unix_connect(sock_path);
	fuzz_pump(fd, 2);
	while ((p = memmem(data, size, PAUSE, strlen(PAUSE))) != NULL) {
		fuzz_feed(fd, data, (size_t)(p - data));
		/* The answers travel to the target and back: a few turns. */
		for (int i = 0; i < 20; i++) {
			fuzz_pump(fd, 1);
			usleep(100);
		}
		size -= (size_t)(p - data) + strlen(PAUSE);
		data = p + strlen(PAUSE);
	}
	fuzz_feed(fd, data, size);
	fuzz_pump(fd, 4);
	close(fd);
	/* Requests in flight finish on the target, then the connection goes. */
	for (int i = 0; i < 50; i++) {
		fuzz_pump(-1, 1);
		usleep(100);
	}
	return (0);
}
