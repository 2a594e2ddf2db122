/*
 * The control sockets nvmfctl talks to (main loop).  Framed messages
 * (ctl-proto.h); each request is checked against the command table and
 * answered with its output and exactly one result.  A client that sends
 * garbage gets an error and is dropped; one that does not read its output
 * is dropped once too much is queued for it; idle ones time out.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "nvmfd.h"
#include "ctl-proto.h"

#define CTL_MAX_CLIENTS		32
#define CTL_OUTPUT_LIMIT	(16 * 1024 * 1024)	/* unread output */
#define CTL_IDLE_SECONDS	60
#define CTL_REFUSED_SECONDS	5	/* a refused client's request */

struct ctl_listener {
	int		fd;
	struct event	*ev;
	char		*path;
	bool		readonly;
};

struct ctl_client {
	TAILQ_ENTRY(ctl_client) entry;
	struct bufferevent *bev;
	bool		readonly;
	bool		closing;
	bool		refused;	/* answered already: close when it sends */
	bool		broken;		/* a message could not be queued */
	struct cmd_ctx	*pending;	/* a command that answers later */
	uid_t		uid;
	pid_t		pid;
};

static struct ctl_listener listeners[2];
static int nlisteners;
static TAILQ_HEAD(, ctl_client) clients = TAILQ_HEAD_INITIALIZER(clients);
static int nclients, nrefused;
static gid_t allowed_gid = (gid_t)-1;

static void
client_free(struct ctl_client *c)
{
	/* A command still running answers nobody. */
	if (c->pending != NULL)
		c->pending->client = NULL;
	TAILQ_REMOVE(&clients, c, entry);
	if (c->refused)
		nrefused--;
	else
		nclients--;
	bufferevent_free(c->bev);
	free(c);
}

/*
 * A message is queued whole or not at all.  Once one could not be (out of
 * memory), nothing more is and the client is closed: it sees no result
 * rather than a garbled or a partial answer.
 */
static void
send_msg(struct ctl_client *c, uint16_t type, const void *a, size_t alen,
    const void *b, size_t blen)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct ctl_hdr h = {
		.magic = CTL_MAGIC, .version = CTL_VERSION, .type = type,
		.len = (uint32_t)(alen + blen),
	};

	if (c->broken)
		return;
	if (evbuffer_expand(out, sizeof(h) + alen + blen) != 0) {
		log_warnx("control: client pid %d: out of memory for its "
		    "answer; closed", (int)c->pid);
		c->broken = c->closing = true;
		return;
	}
	evbuffer_add(out, &h, sizeof(h));
	if (alen)
		evbuffer_add(out, a, alen);
	if (blen)
		evbuffer_add(out, b, blen);
	/* The bufferevent's own trigger for writing (a callback on its
	 * output) is missing when libevent could not allocate it, and it
	 * does not say so: ask for the write here too. */
	bufferevent_enable(c->bev, EV_WRITE);
}

static void
send_result(struct ctl_client *c, uint32_t code, const char *msg)
{
	send_msg(c, CTL_RESULT, &code, sizeof(code), msg, strlen(msg) + 1);
}

/* Output messages are capped so a client never needs a huge buffer. */
static void
send_output(struct ctl_client *c, struct evbuffer *text)
{
	char chunk[60 * 1024];
	size_t n;

	while ((n = evbuffer_remove(text, chunk, sizeof(chunk))) > 0 &&
	    n != (size_t)-1)
		send_msg(c, CTL_OUTPUT, chunk, n, NULL, 0);
}

static void
ctx_free(struct cmd_ctx *ctx)
{
	if (ctx == NULL)
		return;
	out_free(ctx->out);
	if (ctx->text)
		evbuffer_free(ctx->text);
	free(ctx);
}

/* The command's output and result to its client; ctx is freed. */
static void
request_answer(struct ctl_client *c, struct cmd_ctx *ctx, int rc)
{
	if (rc == CTL_OK && out_render(ctx->out, ctx->text, ctx->json) != 0) {
		rc = CTL_ERR;
		snprintf(ctx->err, sizeof(ctx->err), "out of memory");
	}
	if (rc == CTL_OK)
		send_output(c, ctx->text);
	send_result(c, rc, rc == CTL_OK ? "" : ctx->err);
	loop_finish_turn(main_loop);
	ctx_free(ctx);
}

static void client_read_cb(struct bufferevent *, void *);

static void
handle_request(struct ctl_client *c, const uint8_t *p, uint32_t len)
{
	struct cmd_ctx *ctx;
	char *argv[CTL_MAX_ARGS + 1];
	uint32_t flags, argc, off = 8;
	int rc;

	if (len < 8) {
		send_result(c, CTL_EPROTO, "request too short");
		c->closing = true;
		return;
	}
	memcpy(&flags, p, 4);
	memcpy(&argc, p + 4, 4);
	if (argc == 0 || argc > CTL_MAX_ARGS) {
		send_result(c, CTL_EPROTO, "bad argument count");
		c->closing = true;
		return;
	}
	for (uint32_t i = 0; i < argc; i++) {
		const uint8_t *nul = memchr(p + off, '\0', len - off);

		if (nul == NULL) {
			send_result(c, CTL_EPROTO, "malformed arguments");
			c->closing = true;
			return;
		}
		argv[i] = (char *)p + off;
		off = (uint32_t)(nul - p) + 1;
	}
	if (off != len) {
		send_result(c, CTL_EPROTO, "trailing bytes after the arguments");
		c->closing = true;
		return;
	}
	argv[argc] = NULL;

	if ((ctx = calloc(1, sizeof(*ctx))) == NULL ||
	    (ctx->out = out_new()) == NULL ||
	    (ctx->text = evbuffer_new()) == NULL) {
		send_result(c, CTL_ERR, "out of memory");
		ctx_free(ctx);
		return;
	}
	ctx->readonly_client = c->readonly;
	/* --json comes as a flag, or as an option the table parses. */
	ctx->json = flags & CTL_F_JSON;
	rc = cmd_execute(ctx, (int)argc, argv);
	log_debug("control: uid %u pid %d: %s: %d%s%s", (unsigned)c->uid,
	    (int)c->pid, argv[0], rc, ctx->err[0] ? ": " : "", ctx->err);
	if (rc == CMD_PENDING) {
		/* No more requests from it until cmd_done() answers. */
		c->pending = ctx;
		ctx->client = c;
		return;
	}
	request_answer(c, ctx, rc);
}

/* A command that returned CMD_PENDING is done: answer its client, if it
 * is still there, and take its next request. */
void
cmd_done(struct cmd_ctx *ctx, int rc)
{
	struct ctl_client *c = ctx->client;

	if (c == NULL) {
		ctx_free(ctx);
		return;
	}
	c->pending = NULL;
	request_answer(c, ctx, rc);
	client_read_cb(c->bev, c);
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct ctl_hdr h;
	uint8_t *p;

	if (c->refused) {		/* its request: nothing more to wait for */
		client_free(c);
		return;
	}
	while (!c->closing && c->pending == NULL &&
	    evbuffer_get_length(in) >= sizeof(h)) {
		evbuffer_copyout(in, &h, sizeof(h));
		if (h.magic != CTL_MAGIC) {
			send_result(c, CTL_EPROTO, "not an nvmfd control message");
			c->closing = true;
			break;
		}
		if (h.version != CTL_VERSION) {
			char msg[96];

			snprintf(msg, sizeof(msg), "protocol version %u is not "
			    "supported (this daemon speaks %u)", h.version,
			    CTL_VERSION);
			send_result(c, CTL_EPROTO, msg);
			c->closing = true;
			break;
		}
		if (h.type != CTL_REQUEST || h.len > CTL_MAX_REQUEST) {
			send_result(c, CTL_EPROTO, h.type != CTL_REQUEST ?
			    "unexpected message type" : "request too large");
			c->closing = true;
			break;
		}
		if (evbuffer_get_length(in) < sizeof(h) + h.len)
			break;
		evbuffer_drain(in, sizeof(h));
		if ((p = evbuffer_pullup(in, h.len)) == NULL && h.len) {
			send_result(c, CTL_ERR, "out of memory");
			c->closing = true;
			break;
		}
		handle_request(c, p, h.len);
		evbuffer_drain(in, h.len);
		if (evbuffer_get_length(bufferevent_get_output(bev)) >
		    CTL_OUTPUT_LIMIT) {
			log_warnx("control: client pid %d does not read its "
			    "output; dropped", (int)c->pid);
			client_free(c);
			return;
		}
	}
	if (c->closing) {
		/* Stop reading; close once the error is written. */
		bufferevent_disable(bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			client_free(c);
	}
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *c = arg;

	if (c->closing)
		client_free(c);
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_client *c = arg;

	if (what & BEV_EVENT_TIMEOUT)
		log_debug("control: client pid %d idle: closed", (int)c->pid);
	client_free(c);
}

/* Is gid the peer's group, or one of its supplementary groups (as the
 * socket file's mode counts them)? */
static bool
peer_in_group(int fd, const struct ucred *cr, gid_t gid)
{
	bool found = false;
#ifdef SO_PEERGROUPS
	gid_t some[64], *groups = some;
	socklen_t len = sizeof(some);
	int rc;

	if (cr->gid == gid)
		return (true);
	rc = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
	if (rc != 0 && errno == ERANGE && (groups = malloc(len)) != NULL)
		rc = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
	for (size_t i = 0; rc == 0 && groups && i < len / sizeof(gid_t); i++)
		found |= groups[i] == gid;
	if (groups != some)
		free(groups);
#else
	found = cr->gid == gid;
#endif
	return (found);
}

/* Root, our own user, or the configured group may change things. */
static bool
peer_allowed(int fd, struct ucred *cr)
{
	socklen_t len = sizeof(*cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cr, &len) != 0)
		return (false);
	return (cr->uid == 0 || cr->uid == geteuid() ||
	    (allowed_gid != (gid_t)-1 && peer_in_group(fd, cr, allowed_gid)));
}

static struct ctl_client *
client_new(int fd, const struct ucred *cr, bool refused)
{
	struct timeval idle = { refused ? CTL_REFUSED_SECONDS :
	    CTL_IDLE_SECONDS, 0 };
	struct ctl_client *c;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->bev = bufferevent_socket_new(main_loop->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(c);
		close(fd);
		return (NULL);
	}
	c->refused = refused;
	c->uid = cr->uid;
	c->pid = cr->pid;
	TAILQ_INSERT_TAIL(&clients, c, entry);
	if (refused)
		nrefused++;
	else
		nclients++;
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
	    client_event_cb, c);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return (c);
}

/*
 * Answer a connection we do not take with one result, then end it.  Only
 * our side is shut at once: closing the socket would make a client that
 * has not sent its request yet fail to send it (EPIPE) before it reads why.
 * The socket goes when the request arrives, the client hangs up or
 * CTL_REFUSED_SECONDS pass (at once when too many are waiting already).
 */
static void
refuse(int fd, const struct ucred *cr, uint32_t code, const char *msg)
{
	struct ctl_hdr h = { CTL_MAGIC, CTL_VERSION, CTL_RESULT,
	    (uint32_t)(4 + strlen(msg) + 1) };
	struct iovec iov[3] = { { &h, sizeof(h) }, { &code, 4 },
	    { (void *)msg, strlen(msg) + 1 } };

	(void)writev(fd, iov, 3);
	if (shutdown(fd, SHUT_WR) != 0 || nrefused >= CTL_MAX_CLIENTS)
		close(fd);
	else
		(void)client_new(fd, cr, true);
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct ctl_listener *l = arg;
	struct ctl_client *c;
	struct ucred cr = { 0 };
	int fd;

	if ((fd = accept_shedding(lfd, NULL, NULL)) < 0) {
		if (errno == EMFILE || errno == ENFILE)
			log_warnx("control: out of file descriptors: client "
			    "refused");
		return;
	}
	if (l->readonly) {
		socklen_t len = sizeof(cr);

		/* Anyone may use it; the credentials are for the log. */
		(void)getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len);
	} else if (!peer_allowed(fd, &cr)) {
		log_warnx("control: uid %u refused on %s", (unsigned)cr.uid,
		    l->path);
		refuse(fd, &cr, CTL_EPERM, "permission denied");
		return;
	}
	if (nclients >= CTL_MAX_CLIENTS) {
		log_warnx("control: %d clients already; refused", nclients);
		refuse(fd, &cr, CTL_EBUSY, "too many control clients; try "
		    "again later");
		return;
	}
	if ((c = client_new(fd, &cr, false)) != NULL)
		c->readonly = l->readonly;
}

/* Is a daemon answering on path?  Then we must not take it over. */
static bool
socket_alive(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, rc;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (false);
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	return (rc == 0);
}

static int
listen_one(const char *path, bool readonly, mode_t mode)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct ctl_listener *l = &listeners[nlisteners];
	struct stat st;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("control socket %s: path too long", path);
		return (-1);
	}
	if (socket_alive(path)) {
		log_warnx("control socket %s: another nvmfd answers there", path);
		return (-1);
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_warnx("control socket %s: exists and is not a "
			    "socket", path);
			return (-1);
		}
		unlink(path);		/* stale: nobody answered */
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0) {
		log_warn("control socket");
		return (-1);
	}
	/* Never a moment with looser permissions than asked for. */
	old = umask(0777 & ~mode);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		umask(old);
		log_warn("control socket %s", path);
		close(fd);
		return (-1);
	}
	umask(old);
	if (chmod(path, mode) != 0 ||
	    (allowed_gid != (gid_t)-1 && chown(path, (uid_t)-1, allowed_gid) != 0))
		log_warn("control socket %s: permissions", path);
	if (listen(fd, 16) != 0) {
		log_warn("control socket %s", path);
		close(fd);
		unlink(path);
		return (-1);
	}
	l->fd = fd;
	l->readonly = readonly;
	l->path = strdup(path);
	l->ev = event_new(main_loop->base, fd, EV_READ | EV_PERSIST, accept_cb, l);
	event_add(l->ev, NULL);
	nlisteners++;
	log_info("control socket %s%s", path, readonly ? " (read-only)" : "");
	return (0);
}

int
control_start(const char *path, const char *group, const char *ro_path)
{
	if (group != NULL) {
		struct group *gr = getgrnam(group);
		char *end;
		unsigned long gid = strtoul(group, &end, 10);

		/* A number needs no group database (static builds have none). */
		if (*group >= '0' && *group <= '9' && *end == '\0')
			allowed_gid = (gid_t)gid;
		else if (gr != NULL)
			allowed_gid = gr->gr_gid;
		else {
			log_warnx("control group %s: no such group", group);
			return (-1);
		}
	}
	if (listen_one(path, false, 0660) != 0)
		return (-1);
	if (ro_path != NULL && listen_one(ro_path, true, 0666) != 0) {
		control_stop();
		return (-1);
	}
	return (0);
}

void
control_stop(void)
{
	struct ctl_client *c;

	while ((c = TAILQ_FIRST(&clients)) != NULL)
		client_free(c);
	for (int i = 0; i < nlisteners; i++) {
		event_free(listeners[i].ev);
		close(listeners[i].fd);
		unlink(listeners[i].path);
		free(listeners[i].path);
	}
	nlisteners = 0;
}
