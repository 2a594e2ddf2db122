/*
 * Helpers of the fuzz targets (fuzz-lib.h).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "fuzz-lib.h"

static char tmpdir[64];

void
fuzz_log_init(void)
{
	if (getenv("NVMFD_FUZZ_LOG") != NULL)
		log_init(1, 1);
	else
		log_init(0, 0);
}

struct config *
fuzz_daemon_start(struct config *cf)
{
	struct port *port;

	if (cf == NULL) {
		if ((cf = config_default()) == NULL)
			abort();
		TAILQ_FIRST(&TAILQ_FIRST(&cf->subsystems)->namespaces)->size =
		    1 << 20;
	}
	TAILQ_FOREACH(port, &cf->ports, entry)
		snprintf(port->service, sizeof(port->service), "0");
	running_config = cf;
	signal(SIGPIPE, SIG_IGN);
	if (loops_init(0, cf->mdts) != 0 || registry_start(cf) != 0)
		abort();
	/* The port the kernel picked, so the configuration stays valid (the
	 * control commands check all of it when they change it). */
	TAILQ_FOREACH(port, &cf->ports, entry) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (getsockname(port->fd, (struct sockaddr *)&ss, &len) != 0)
			abort();
		snprintf(port->service, sizeof(port->service), "%u",
		    ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port));
	}
	return (cf);
}

void
fuzz_pump(int peer, int rounds)
{
	char sink[65536];

	for (int i = 0; i < rounds; i++) {
		event_base_loop(main_loop->base, EVLOOP_NONBLOCK);
		while (peer >= 0 && read(peer, sink, sizeof(sink)) > 0)
			;
	}
}

void
fuzz_feed(int fd, const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		ssize_t n = write(fd, data + off, MINIMUM(size - off, 4096));

		if (n < 0 && errno != EAGAIN)
			break;
		if (n > 0)
			off += (size_t)n;
		fuzz_pump(fd, 2);
	}
}

int
fuzz_unix_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
		abort();
	return (fd);
}

static void
tmpdir_remove(void)
{
	struct dirent *de;
	DIR *d;

	if ((d = opendir(tmpdir)) != NULL) {
		while ((de = readdir(d)) != NULL)
			(void)unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	rmdir(tmpdir);
}

const char *
fuzz_tmpdir(const char *name)
{
	const char *tmp = getenv("TMPDIR");

	/* Socket paths must fit sun_path. */
	if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 30)
		tmp = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/nvmfd-fuzz-%s-XXXXXX", tmp, name);
	if (mkdtemp(tmpdir) == NULL)
		abort();
	atexit(tmpdir_remove);
	return (tmpdir);
}
