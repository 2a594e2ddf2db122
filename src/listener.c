/*
 * Listening sockets for the configured ports, on the main loop.  Every new
 * connection starts on the main loop (ICReq, Connect); I/O queues move to a
 * worker after their Connect.
 */
#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "nvmfd.h"

atomic_uint nconnections;

/* Held open so that a listener out of descriptors can still take the
 * pending connection off its queue, and close it. */
static int spare_fd = -1;

/*
 * accept4(), non-blocking and close-on-exec.  Out of descriptors, the
 * connection waiting first is accepted on the spare one and closed at
 * once: otherwise it stays queued and the listener's event fires again
 * and again, a busy loop, until some descriptor is freed.  Returns -1 with
 * errno (EMFILE or ENFILE for a connection shed that way).
 */
int
accept_shedding(int lfd, struct sockaddr *sa, socklen_t *len)
{
	int fd, err;

	if (spare_fd < 0)
		spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fd = accept4(lfd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0 || (errno != EMFILE && errno != ENFILE) || spare_fd < 0)
		return (fd);
	err = errno;
	close(spare_fd);
	if ((fd = accept(lfd, NULL, NULL)) >= 0)
		close(fd);
	spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	errno = err;
	return (-1);
}

static void
sockaddr_string(const struct sockaddr *sa, char *addr, size_t alen,
    char *full, size_t flen)
{
	char host[INET6_ADDRSTRLEN] = "?", serv[8] = "?";

	getnameinfo(sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in), host, sizeof(host), serv, sizeof(serv),
	    NI_NUMERICHOST | NI_NUMERICSERV);
	if (addr)
		snprintf(addr, alen, "%s", host);
	if (full)
		snprintf(full, flen, sa->sa_family == AF_INET6 ? "[%s]:%s" :
		    "%s:%s", host, serv);
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct port *port = arg;
	struct sockaddr_storage peer, local;
	socklen_t plen, llen;
	char peerstr[80], localstr[64];
	int fd, one = 1;

	for (int i = 0; i < 32; i++) {
		plen = sizeof(peer);
		llen = sizeof(local);
		fd = accept_shedding(lfd, (struct sockaddr *)&peer, &plen);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_warnx("port %u: out of file descriptors: "
				    "connection refused", port->id);
			else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("accept on port %u", port->id);
			return;
		}
		sockaddr_string((struct sockaddr *)&peer, NULL, 0, peerstr,
		    sizeof(peerstr));
		if (atomic_load(&nconnections) >= running_config->max_connections) {
			log_peer_warnx("%s: refused: %u connections is the limit",
			    peerstr, running_config->max_connections);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		getsockname(fd, (struct sockaddr *)&local, &llen);
		sockaddr_string((struct sockaddr *)&local, localstr,
		    sizeof(localstr), NULL, 0);
		atomic_fetch_add(&nconnections, 1);
		if (qpair_create(main_loop, fd, port, peerstr, localstr) == NULL) {
			log_peer_warnx("%s: out of memory", peerstr);
			atomic_fetch_sub(&nconnections, 1);
			close(fd);
			continue;
		}
		log_debug("%s: connected to port %u", peerstr, port->id);
	}
}

int
listener_start(struct port *port)
{
	struct addrinfo hints = {
		.ai_family = port->family,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	}, *ai;
	int fd, one = 1, rc;

	if ((rc = getaddrinfo(port->address, port->service, &hints, &ai)) != 0) {
		log_warnx("port %u: %s:%s: %s", port->id, port->address,
		    port->service, gai_strerror(rc));
		return (-1);
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("port %u: socket", port->id);
		freeaddrinfo(ai);
		return (-1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 512) != 0) {
		log_warn("port %u: %s port %s", port->id, port->address,
		    port->service);
		close(fd);
		freeaddrinfo(ai);
		return (-1);
	}
	freeaddrinfo(ai);
	if ((port->ev = event_new(main_loop->base, fd, EV_READ | EV_PERSIST,
	    accept_cb, port)) == NULL) {
		log_warnx("port %u: out of memory", port->id);
		close(fd);
		return (-1);
	}
	port->fd = fd;
	event_add(port->ev, NULL);
	log_info("listening on %s%s%s:%s (port %u)",
	    port->family == AF_INET6 ? "[" : "", port->address,
	    port->family == AF_INET6 ? "]" : "", port->service, port->id);
	return (0);
}

void
listener_stop(struct port *port)
{
	if (port->ev) {
		event_free(port->ev);
		port->ev = NULL;
	}
	if (port->fd >= 0) {
		close(port->fd);
		port->fd = -1;
	}
}

void
listeners_stop(struct config *cf)
{
	struct port *port;

	TAILQ_FOREACH(port, &cf->ports, entry)
		listener_stop(port);
}
