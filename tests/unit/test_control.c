/*
 * The control channel without the network: control.c's framing and request
 * checks over a real Unix socket, driven by pumping the main loop from the
 * test, and the command table (cmd.c, cmd-target.c, cmd-config.c) through
 * cmd_execute() with a cmd_ctx and no socket at all.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "harness.h"
#include "ctl-proto.h"

#define NQN_A		"nqn.2026-11.io.nvmfd.test:ctl-a"
#define NQN_B		"nqn.2026-11.io.nvmfd.test:ctl-b"
#define NQN_NONE	"nqn.2026-11.io.nvmfd.test:none"
#define HOST_1		"nqn.2014-08.org.nvmexpress:uuid:" \
			    "6e7f1a22-0000-4000-8000-0000000000c1"
#define UUID_A1		"0b1d2c3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
#define MAX_CLIENTS	32	/* control.c's CTL_MAX_CLIENTS */

/* Two subsystems, one with a fixed UUID, a host list and a referral.  The
 * port is never bound: the tests start no listener. */
static const char config_text[] =
	"workers: 1\n"
	"ports:\n"
	"  - id: 1\n"
	"    address: 127.0.0.1\n"
	"    port: 24529\n"
	"subsystems:\n"
	"  - nqn: " NQN_A "\n"
	"    model: control test\n"
	"    namespaces:\n"
	"      - {nsid: 1, backend: ram, size: 1M, uuid: " UUID_A1 "}\n"
	"      - {nsid: 3, backend: ram, size: 2M, block_size: 4096}\n"
	"  - nqn: " NQN_B "\n"
	"    hosts: [" HOST_1 "]\n"
	"    namespaces:\n"
	"      - {nsid: 1, backend: ram, size: 1M}\n"
	"referrals:\n"
	"  - {address: 192.0.2.1, port: 8009}\n";

static char dir[200];
static char sock_path[256], ro_path[256];

/* ----------------------------------------------------------- fixtures */

static void
env_start(bool with_sockets)
{
	const char *tmp = getenv("TMPDIR");
	struct config *cf;
	char err[512];

	h_env_init();
	/* Socket paths must fit sun_path: fall back to /tmp. */
	if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 60)
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/nvmfd-ctl-XXXXXX", tmp);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/ctl.sock", dir);
	snprintf(ro_path, sizeof(ro_path), "%s/ro.sock", dir);

	cf = config_load_string("test", config_text, err, sizeof(err));
	ck_assert_msg(cf != NULL, "%s", err);
	h_publish(cf);
	if (with_sockets)
		ck_assert_int_eq(control_start(sock_path, NULL, ro_path), 0);
}

static void
setup_sockets(void)
{
	env_start(true);
}

static void
setup_table(void)
{
	env_start(false);
}

static void
teardown(void)
{
	char cmd[300];

	control_stop();
	h_pump_for(30);		/* retire removed namespaces */
	registry_stop(running_config);
	config_free(running_config);
	running_config = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* ------------------------------------------------------------ a client */

static int
cl_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
	    "connect %s: %s", path, strerror(errno));
	ck_assert_int_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	h_pump();			/* accept it */
	return (fd);
}

/* Nothing arrives on fd for ms milliseconds, and it stays open. */
static bool
cl_quiet(int fd, int ms)
{
	uint64_t end = h_ms_now() + ms;
	uint8_t b;

	while (h_ms_now() < end) {
		ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);

		if (n >= 0)
			return (false);
		h_pump();
		usleep(200);
	}
	return (true);
}

static size_t
put_hdr(uint8_t *out, uint32_t magic, uint16_t version, uint16_t type,
    uint32_t len)
{
	struct ctl_hdr h = { .magic = magic, .version = version, .type = type,
	    .len = len };

	memcpy(out, &h, sizeof(h));
	return (sizeof(h));
}

/* A well-formed request for the NULL-terminated list args; returns its
 * length in out (which must be large enough). */
static size_t
build_vreq(uint8_t *out, uint32_t flags, const char *const *args)
{
	uint32_t argc = 0;
	size_t off = sizeof(struct ctl_hdr) + 8;

	for (; args[argc] != NULL; argc++) {
		size_t l = strlen(args[argc]) + 1;

		memcpy(out + off, args[argc], l);
		off += l;
	}
	put_hdr(out, CTL_MAGIC, CTL_VERSION, CTL_REQUEST,
	    (uint32_t)(off - sizeof(struct ctl_hdr)));
	memcpy(out + sizeof(struct ctl_hdr), &flags, 4);
	memcpy(out + sizeof(struct ctl_hdr) + 4, &argc, 4);
	return (off);
}

static size_t
build_req(uint8_t *out, uint32_t flags, ...)
{
	const char *args[CTL_MAX_ARGS + 2];
	int n = 0;
	va_list ap;

	va_start(ap, flags);
	while ((args[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	return (build_vreq(out, flags, args));
}

/* A request with the given payload as it is (no checks). */
static size_t
build_raw(uint8_t *out, const void *payload, uint32_t len)
{
	size_t off = put_hdr(out, CTL_MAGIC, CTL_VERSION, CTL_REQUEST, len);

	memcpy(out + off, payload, len);
	return (off + len);
}

struct answer {
	uint32_t	code;
	char		msg[1024];
	char		*out;		/* OUTPUT messages concatenated */
	size_t		out_len;
	int		noutput;
	uint32_t	max_output;	/* largest OUTPUT message */
};

static void
answer_free(struct answer *a)
{
	free(a->out);
	memset(a, 0, sizeof(*a));
}

/* Read OUTPUT messages up to and including the RESULT. */
static void
cl_answer(int fd, struct answer *a)
{
	memset(a, 0, sizeof(*a));
	a->out = calloc(1, 1);
	ck_assert_ptr_nonnull(a->out);
	for (;;) {
		struct ctl_hdr h;
		uint8_t *p;

		h_recv_fd(fd, &h, sizeof(h));
		ck_assert_uint_eq(h.magic, CTL_MAGIC);
		ck_assert_uint_eq(h.version, CTL_VERSION);
		ck_assert_uint_le(h.len, 1u << 20);
		p = malloc(h.len + 1);
		ck_assert_ptr_nonnull(p);
		h_recv_fd(fd, p, h.len);
		p[h.len] = '\0';
		if (h.type == CTL_OUTPUT) {
			ck_assert_uint_gt(h.len, 0);
			a->out = realloc(a->out, a->out_len + h.len + 1);
			ck_assert_ptr_nonnull(a->out);
			memcpy(a->out + a->out_len, p, h.len + 1);
			a->out_len += h.len;
			a->noutput++;
			if (h.len > a->max_output)
				a->max_output = h.len;
			free(p);
			continue;
		}
		ck_assert_msg(h.type == CTL_RESULT, "message type %u", h.type);
		ck_assert_uint_ge(h.len, 5);
		ck_assert_msg(p[h.len - 1] == '\0', "result message not "
		    "NUL-terminated");
		memcpy(&a->code, p, 4);
		snprintf(a->msg, sizeof(a->msg), "%s", (char *)p + 4);
		free(p);
		return;
	}
}

/* Send buf, expect exactly one RESULT with code, return its message. */
static void
expect_code(int fd, const void *buf, size_t len, uint32_t code,
    struct answer *a)
{
	h_send_fd(fd, buf, len);
	cl_answer(fd, a);
	ck_assert_msg(a->code == code, "result %u (%s), expected %u", a->code,
	    a->msg, code);
}

/* A protocol error: EPROTO, a message containing what, then the close. */
static void
expect_eproto(const void *buf, size_t len, const char *what)
{
	struct answer a;
	int fd = cl_connect(sock_path);

	expect_code(fd, buf, len, CTL_EPROTO, &a);
	ck_assert_int_eq(a.noutput, 0);
	ck_assert_msg(strstr(a.msg, what) != NULL, "message '%s' does not "
	    "mention '%s'", a.msg, what);
	ck_assert_msg(h_closed_fd(fd, H_TIMEOUT_MS), "socket still open after "
	    "'%s'", a.msg);
	answer_free(&a);
	close(fd);
}

/* A command that fails with code: the connection stays usable. */
static void
expect_fail(int fd, uint32_t code, const char *what, ...)
{
	const char *args[CTL_MAX_ARGS + 2];
	uint8_t buf[4096];
	struct answer a;
	int n = 0;
	va_list ap;

	va_start(ap, what);
	while ((args[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	expect_code(fd, buf, build_vreq(buf, 0, args), code, &a);
	ck_assert_int_eq(a.noutput, 0);
	ck_assert_msg(strstr(a.msg, what) != NULL, "%s: message '%s' does "
	    "not mention '%s'", args[0], a.msg, what);
	answer_free(&a);
}

static void
expect_version_ok(int fd)
{
	uint8_t buf[256];
	struct answer a;

	expect_code(fd, buf, build_req(buf, 0, "version", NULL), CTL_OK, &a);
	ck_assert_msg(strstr(a.out, PACKAGE_VERSION) != NULL, "%s", a.out);
	answer_free(&a);
}

/* ------------------------------------------------------------- framing */

START_TEST(good_request)
{
	uint8_t buf[512];
	struct answer a;
	int fd = cl_connect(sock_path);

	/* OUTPUT, then exactly one RESULT, and then nothing. */
	expect_code(fd, buf, build_req(buf, 0, "list-subsys", NULL), CTL_OK,
	    &a);
	ck_assert_int_ge(a.noutput, 1);
	ck_assert_str_eq(a.msg, "");
	ck_assert_ptr_nonnull(strstr(a.out, NQN_A));
	ck_assert_ptr_nonnull(strstr(a.out, NQN_B));
	ck_assert_ptr_nonnull(strstr(a.out, "NQN"));	/* a table */
	answer_free(&a);
	ck_assert(cl_quiet(fd, 50));

	/* JSON by the request flag and by the option. */
	expect_code(fd, buf, build_req(buf, CTL_F_JSON, "list-subsys", NULL),
	    CTL_OK, &a);
	ck_assert_msg(a.out[0] == '{', "%s", a.out);
	ck_assert_ptr_nonnull(strstr(a.out, "\"nqn\": \"" NQN_A "\""));
	answer_free(&a);
	expect_code(fd, buf, build_req(buf, 0, "list-ns", NQN_A, "--json",
	    NULL), CTL_OK, &a);
	ck_assert_msg(a.out[0] == '{', "%s", a.out);
	ck_assert_ptr_nonnull(strstr(a.out, "\"uuid\": \"" UUID_A1 "\""));
	answer_free(&a);
	ck_assert(cl_quiet(fd, 50));

	/* A command without output: RESULT only. */
	expect_code(fd, buf, build_req(buf, 0, "add-host", NQN_B,
	    "nqn.2026-11.io.nvmfd.test:h2", NULL), CTL_OK, &a);
	ck_assert_int_eq(a.noutput, 0);
	answer_free(&a);

	/* A failure: RESULT with the code and a message, no OUTPUT. */
	expect_fail(fd, CTL_ENOENT, NQN_NONE, "show-subsys", NQN_NONE, NULL);
	expect_version_ok(fd);
	close(fd);
}
END_TEST

START_TEST(bad_magic)
{
	uint8_t buf[256];
	size_t len = build_req(buf, 0, "version", NULL);

	buf[0] ^= 0xff;
	expect_eproto(buf, len, "not an nvmfd control message");
	/* Not even a header's worth of sense: an HTTP request. */
	expect_eproto("GET / HTTP/1.0\r\n\r\n", 18, "not an nvmfd");
}
END_TEST

START_TEST(bad_version)
{
	uint8_t buf[256];
	size_t len = build_req(buf, 0, "version", NULL);
	struct ctl_hdr h;

	memcpy(&h, buf, sizeof(h));
	h.version = 2;
	memcpy(buf, &h, sizeof(h));
	expect_eproto(buf, len, "version 2");
	h.version = 0;
	memcpy(buf, &h, sizeof(h));
	expect_eproto(buf, len, "version 0");
}
END_TEST

START_TEST(bad_type)
{
	uint8_t buf[256];
	size_t len = build_req(buf, 0, "version", NULL);
	struct ctl_hdr h;

	memcpy(&h, buf, sizeof(h));
	h.type = CTL_RESULT;
	memcpy(buf, &h, sizeof(h));
	expect_eproto(buf, len, "unexpected message type");
	h.type = 0x7fff;
	memcpy(buf, &h, sizeof(h));
	expect_eproto(buf, len, "unexpected message type");
}
END_TEST

START_TEST(request_size)
{
	size_t big = sizeof(struct ctl_hdr) + CTL_MAX_REQUEST + 64;
	uint8_t *buf = calloc(1, big);
	char *arg;
	size_t len;
	struct answer a;
	int fd;

	ck_assert_ptr_nonnull(buf);
	/* One byte over the limit: refused on the header alone. */
	len = put_hdr(buf, CTL_MAGIC, CTL_VERSION, CTL_REQUEST,
	    CTL_MAX_REQUEST + 1);
	expect_eproto(buf, len, "too large");
	len = put_hdr(buf, CTL_MAGIC, CTL_VERSION, CTL_REQUEST, 0xffffffffu);
	expect_eproto(buf, len, "too large");

	/* Exactly the limit is read and parsed: "help <long name>" is an
	 * unknown command to describe, a usage error, not a framing one. */
	arg = malloc(CTL_MAX_REQUEST);
	ck_assert_ptr_nonnull(arg);
	len = CTL_MAX_REQUEST - 8 - strlen("help") - 1 - 1;
	memset(arg, 'x', len);
	arg[len] = '\0';
	len = build_req(buf, 0, "help", arg, NULL);
	ck_assert_uint_eq(len, sizeof(struct ctl_hdr) + CTL_MAX_REQUEST);
	fd = cl_connect(sock_path);
	expect_code(fd, buf, len, CTL_EUSAGE, &a);
	ck_assert_ptr_nonnull(strstr(a.msg, "unknown command"));
	answer_free(&a);
	expect_version_ok(fd);		/* still open */
	close(fd);
	free(arg);
	free(buf);
}
END_TEST

START_TEST(bad_arguments)
{
	uint8_t p[512], buf[600];
	uint32_t v;
	size_t n;

	/* Shorter than flags and argc. */
	expect_eproto(buf, build_raw(buf, "\0\0\0\0", 4), "too short");
	expect_eproto(buf, build_raw(buf, "", 0), "too short");

	/* argc 0. */
	memset(p, 0, 8);
	expect_eproto(buf, build_raw(buf, p, 8), "argument count");
	memcpy(p + 8, "version", 8);
	expect_eproto(buf, build_raw(buf, p, 16), "argument count");

	/* argc above the limit, with that many arguments present. */
	v = CTL_MAX_ARGS + 1;
	memcpy(p + 4, &v, 4);
	memset(p + 8, 0, v);
	p[8] = 'x';
	expect_eproto(buf, build_raw(buf, p, 8 + v), "argument count");
	v = 0xffffffffu;
	memcpy(p + 4, &v, 4);
	expect_eproto(buf, build_raw(buf, p, 8 + 16), "argument count");

	/* The last argument has no NUL. */
	v = 1;
	memcpy(p + 4, &v, 4);
	memcpy(p + 8, "version", 7);
	expect_eproto(buf, build_raw(buf, p, 15), "malformed arguments");
	/* Fewer arguments than argc says. */
	v = 3;
	memcpy(p + 4, &v, 4);
	memcpy(p + 8, "list-ns\0" NQN_A, 8 + sizeof(NQN_A));
	expect_eproto(buf, build_raw(buf, p, 8 + 8 + sizeof(NQN_A)),
	    "malformed arguments");

	/* Bytes after the last argument. */
	v = 1;
	memcpy(p + 4, &v, 4);
	memcpy(p + 8, "version\0junk", 12);
	expect_eproto(buf, build_raw(buf, p, 20), "trailing bytes");
	memcpy(p + 8, "version\0\0", 9);
	expect_eproto(buf, build_raw(buf, p, 17), "trailing bytes");

	/* Exactly CTL_MAX_ARGS arguments is fine (and then a usage error:
	 * too many positionals for version). */
	v = CTL_MAX_ARGS;
	memcpy(p + 4, &v, 4);
	n = 8;
	memcpy(p + n, "version", 8);
	n += 8;
	for (uint32_t i = 1; i < v; i++) {
		memcpy(p + n, "a", 2);
		n += 2;
	}
	{
		struct answer a;
		int fd = cl_connect(sock_path);

		expect_code(fd, buf, build_raw(buf, p, (uint32_t)n),
		    CTL_EUSAGE, &a);
		answer_free(&a);
		expect_version_ok(fd);
		close(fd);
	}
}
END_TEST

START_TEST(usage_errors)
{
	int fd = cl_connect(sock_path);

	expect_fail(fd, CTL_EUSAGE, "unknown command 'frobnicate'",
	    "frobnicate", NULL);
	expect_fail(fd, CTL_EUSAGE, "unknown command", "", NULL);
	expect_fail(fd, CTL_EUSAGE, "unknown option --bogus", "list-subsys",
	    "--bogus", NULL);
	expect_fail(fd, CTL_EUSAGE, "unknown option --nsid", "set-ns", NQN_A,
	    "1", "--nsid", "2", NULL);
	expect_fail(fd, CTL_EUSAGE, "--model needs a value", "set-subsys",
	    NQN_A, "--model", NULL);
	expect_fail(fd, CTL_EUSAGE, "--json takes no value", "version",
	    "--json=yes", NULL);
	expect_fail(fd, CTL_EUSAGE, "--model given twice", "set-subsys",
	    NQN_A, "--model", "x", "--model=y", NULL);
	expect_fail(fd, CTL_EUSAGE, "--json given twice", "version", "--json",
	    "--json", NULL);
	expect_fail(fd, CTL_EUSAGE, "usage: nvmfctl show-subsys",
	    "show-subsys", NULL);
	expect_fail(fd, CTL_EUSAGE, "usage: nvmfctl show-subsys",
	    "show-subsys", NQN_A, NQN_B, NULL);
	expect_fail(fd, CTL_EUSAGE, "usage: nvmfctl del-ns", "del-ns", NQN_A,
	    NULL);
	expect_fail(fd, CTL_EUSAGE, "usage: nvmfctl version", "version", "x",
	    NULL);
	expect_fail(fd, CTL_EUSAGE, "usage: nvmfctl del-referral",
	    "del-referral", "192.0.2.1", "8009", "x", NULL);
	/* None of that closed the connection or changed anything. */
	expect_version_ok(fd);
	ck_assert_ptr_nonnull(subsystem_find(running_config, NQN_A));
	close(fd);
}
END_TEST

START_TEST(readonly_socket)
{
	int fd = cl_connect(ro_path);
	uint8_t buf[512];
	struct answer a;

	expect_fail(fd, CTL_EPERM, "read-only", "add-subsys",
	    "nqn.2026-11.io.nvmfd.test:new", NULL);
	expect_fail(fd, CTL_EPERM, "read-only", "del-subsys", NQN_A, NULL);
	expect_fail(fd, CTL_EPERM, "read-only", "set-ns", NQN_A, "1",
	    "--readonly", "on", NULL);
	expect_fail(fd, CTL_EPERM, "read-only", "terminate", "1", NULL);
	expect_fail(fd, CTL_EPERM, "read-only", "save", NULL);
	expect_fail(fd, CTL_EPERM, "read-only", "reload", NULL);
	ck_assert_ptr_null(subsystem_find(running_config,
	    "nqn.2026-11.io.nvmfd.test:new"));
	ck_assert_ptr_nonnull(subsystem_find(running_config, NQN_A));
	ck_assert_ptr_nonnull(namespace_find(subsystem_find(running_config,
	    NQN_A), 1));
	ck_assert(!namespace_find(subsystem_find(running_config, NQN_A),
	    1)->readonly);

	/* Every read-only command is allowed. */
	expect_version_ok(fd);
	expect_code(fd, buf, build_req(buf, 0, "list-subsys", NULL), CTL_OK, &a);
	ck_assert_ptr_nonnull(strstr(a.out, NQN_A));
	answer_free(&a);
	expect_code(fd, buf, build_req(buf, 0, "list-ns", NQN_A, NULL), CTL_OK,
	    &a);
	answer_free(&a);
	expect_code(fd, buf, build_req(buf, 0, "show-subsys", NQN_B, NULL),
	    CTL_OK, &a);
	answer_free(&a);
	expect_code(fd, buf, build_req(buf, 0, "list-hosts", NQN_B, NULL),
	    CTL_OK, &a);
	ck_assert_ptr_nonnull(strstr(a.out, HOST_1));
	answer_free(&a);
	expect_code(fd, buf, build_req(buf, 0, "list-ports", NULL), CTL_OK, &a);
	answer_free(&a);
	expect_code(fd, buf, build_req(buf, 0, "list-referrals", NULL), CTL_OK,
	    &a);
	answer_free(&a);
	expect_code(fd, buf, build_req(buf, 0, "list-ctrl", NULL), CTL_OK, &a);
	answer_free(&a);
	expect_code(fd, buf, build_req(buf, 0, "stats", NULL), CTL_OK, &a);
	answer_free(&a);
	expect_code(fd, buf, build_req(buf, 0, "show-config", NULL), CTL_OK,
	    &a);
	ck_assert_ptr_nonnull(strstr(a.out, NQN_B));
	answer_free(&a);
	expect_code(fd, buf, build_req(buf, 0, "help", NULL), CTL_OK, &a);
	answer_free(&a);
	close(fd);

	/* The same write command on the other socket works. */
	fd = cl_connect(sock_path);
	expect_code(fd, buf, build_req(buf, 0, "set-ns", NQN_A, "1",
	    "--readonly", "on", NULL), CTL_OK, &a);
	answer_free(&a);
	ck_assert(namespace_find(subsystem_find(running_config, NQN_A),
	    1)->readonly);
	close(fd);
}
END_TEST

START_TEST(pipelined)
{
	uint8_t buf[2048];
	size_t len = 0;
	struct answer a;
	int fd = cl_connect(sock_path);

	/* Three requests in one write, each with a different outcome. */
	len += build_req(buf + len, 0, "show-subsys", NQN_NONE, NULL);
	len += build_req(buf + len, CTL_F_JSON, "list-ns", NQN_B, NULL);
	len += build_req(buf + len, 0, "frobnicate", NULL);
	len += build_req(buf + len, 0, "add-host", NQN_B, HOST_1, NULL);
	h_send_fd(fd, buf, len);
	cl_answer(fd, &a);
	ck_assert_uint_eq(a.code, CTL_ENOENT);
	answer_free(&a);
	cl_answer(fd, &a);
	ck_assert_uint_eq(a.code, CTL_OK);
	ck_assert_msg(a.out[0] == '{' && strstr(a.out, "\"nsid\": 1"), "%s",
	    a.out);
	answer_free(&a);
	cl_answer(fd, &a);
	ck_assert_uint_eq(a.code, CTL_EUSAGE);
	answer_free(&a);
	cl_answer(fd, &a);
	ck_assert_uint_eq(a.code, CTL_EEXIST);
	answer_free(&a);
	ck_assert(cl_quiet(fd, 50));

	/* A good request, then garbage in the same write: the first is
	 * answered, the garbage gets EPROTO and the close. */
	len = build_req(buf, 0, "version", NULL);
	memcpy(buf + len, "garbage garbage garbage", 23);
	h_send_fd(fd, buf, len + 23);
	cl_answer(fd, &a);
	ck_assert_uint_eq(a.code, CTL_OK);
	answer_free(&a);
	cl_answer(fd, &a);
	ck_assert_uint_eq(a.code, CTL_EPROTO);
	answer_free(&a);
	ck_assert(h_closed_fd(fd, H_TIMEOUT_MS));
	close(fd);
}
END_TEST

START_TEST(split_writes)
{
	uint8_t buf[512];
	size_t len = build_req(buf, 0, "list-ns", NQN_A, NULL);
	struct answer a;
	int fd = cl_connect(sock_path);

	/* One byte at a time: the daemon waits for the whole message. */
	for (size_t i = 0; i < len; i++) {
		ck_assert(cl_quiet(fd, 1));
		h_send_fd(fd, buf + i, 1);
	}
	cl_answer(fd, &a);
	ck_assert_uint_eq(a.code, CTL_OK);
	ck_assert_ptr_nonnull(strstr(a.out, UUID_A1));
	answer_free(&a);
	close(fd);
}
END_TEST

START_TEST(stalled_client)
{
	uint8_t buf[512];
	size_t len = build_req(buf, 0, "list-ports", NULL);
	struct answer a;
	int slow = cl_connect(sock_path);
	int fast = cl_connect(sock_path);

	/* Half a header, then nothing: the daemon must not wait for it. */
	h_send_fd(slow, buf, sizeof(struct ctl_hdr) / 2);
	expect_version_ok(fast);
	expect_code(fast, buf, build_req(buf, 0, "list-ports", NULL), CTL_OK,
	    &a);
	answer_free(&a);
	/* A whole header and half the payload: still no answer... */
	h_send_fd(slow, buf + sizeof(struct ctl_hdr) / 2,
	    sizeof(struct ctl_hdr) / 2 + 3);
	ck_assert(cl_quiet(slow, 20));
	expect_version_ok(fast);
	/* ...until the rest arrives. */
	h_send_fd(slow, buf + sizeof(struct ctl_hdr) + 3,
	    len - sizeof(struct ctl_hdr) - 3);
	cl_answer(slow, &a);
	ck_assert_uint_eq(a.code, CTL_OK);
	ck_assert_ptr_nonnull(strstr(a.out, "24529"));
	answer_free(&a);
	close(slow);
	close(fast);
}
END_TEST

/* A client over the limit gets CTL_EBUSY without asking, then the close. */
static void
expect_busy(int fd)
{
	struct answer a;

	cl_answer(fd, &a);
	ck_assert_msg(a.code == CTL_EBUSY, "client %d: result %u (%s)",
	    MAX_CLIENTS + 1, a.code, a.msg);
	ck_assert_ptr_nonnull(strstr(a.msg, "too many"));
	ck_assert_int_eq(a.noutput, 0);
	answer_free(&a);
	ck_assert(h_closed_fd(fd, H_TIMEOUT_MS));
}

START_TEST(client_limit)
{
	int fds[MAX_CLIENTS + 2], extra;

	/* 32 clients at once, on both sockets. */
	for (int i = 0; i < MAX_CLIENTS; i++)
		fds[i] = cl_connect(i % 4 == 3 ? ro_path : sock_path);
	for (int i = 0; i < MAX_CLIENTS; i++)
		expect_version_ok(fds[i]);
	/* The next one is refused: EBUSY, then the close. */
	extra = cl_connect(sock_path);
	expect_busy(extra);
	close(extra);
	extra = cl_connect(ro_path);
	expect_busy(extra);
	close(extra);
	/* The others are still served. */
	expect_version_ok(fds[0]);
	expect_version_ok(fds[MAX_CLIENTS - 1]);
	/* One leaves: there is room again. */
	close(fds[5]);
	h_pump_for(20);
	fds[5] = cl_connect(sock_path);
	expect_version_ok(fds[5]);
	extra = cl_connect(sock_path);
	expect_busy(extra);
	close(extra);
	for (int i = 0; i < MAX_CLIENTS; i++)
		close(fds[i]);
	h_pump_for(20);
	extra = cl_connect(sock_path);
	expect_version_ok(extra);
	close(extra);
}
END_TEST

/* A protocol error from one client leaves the others alone, even one with
 * half a request buffered. */
START_TEST(error_isolated)
{
	uint8_t buf[256];
	size_t len = build_req(buf, 0, "list-hosts", NQN_B, NULL);
	struct answer a;
	int good = cl_connect(sock_path);
	int bad = cl_connect(sock_path);

	expect_version_ok(good);
	h_send_fd(good, buf, 20);
	h_send_fd(bad, "\xff\xff\xff\xff\x01\x00\x01\x00\x00\x00\x00\x00", 12);
	cl_answer(bad, &a);
	ck_assert_uint_eq(a.code, CTL_EPROTO);
	answer_free(&a);
	ck_assert(h_closed_fd(bad, H_TIMEOUT_MS));
	close(bad);
	h_send_fd(good, buf + 20, len - 20);
	cl_answer(good, &a);
	ck_assert_uint_eq(a.code, CTL_OK);
	ck_assert_ptr_nonnull(strstr(a.out, HOST_1));
	answer_free(&a);
	close(good);
}
END_TEST

#define NOGRP	((gid_t)-1)	/* no supplementary group */

/*
 * As another user (a forked child that drops root, with primary group gid
 * and supplementary group extra): "version" on path; returns the result
 * code, or -1 if it could not connect.
 */
static int
other_user_request(const char *path, uid_t uid, gid_t gid, gid_t extra)
{
	uint64_t end = h_ms_now() + H_TIMEOUT_MS;
	pid_t pid;
	int st;

	if ((pid = fork()) == 0) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		struct ctl_hdr h;
		uint8_t buf[256];
		uint32_t code;
		size_t len, got = 0;
		int fd;

		alarm(10);
		if (setgroups(extra != (gid_t)-1, &extra) != 0 ||
		    setgid(gid) != 0 || setuid(uid) != 0)
			_exit(100);
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
		    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
			_exit(101);
		len = build_req(buf, 0, "version", NULL);
		if (write(fd, buf, len) != (ssize_t)len)
			_exit(102);
		/* Skip OUTPUT messages up to the RESULT. */
		for (;;) {
			for (got = 0; got < sizeof(h);) {
				ssize_t n = read(fd, (uint8_t *)&h + got,
				    sizeof(h) - got);

				if (n <= 0)
					_exit(103);
				got += n;
			}
			if (h.len > sizeof(buf))
				_exit(104);
			for (got = 0; got < h.len;) {
				ssize_t n = read(fd, buf + got, h.len - got);

				if (n <= 0)
					_exit(105);
				got += n;
			}
			if (h.type == CTL_RESULT)
				break;
		}
		memcpy(&code, buf, 4);
		_exit((int)code);
	}
	ck_assert_int_gt(pid, 0);
	/* The daemon's loop runs here, in the parent. */
	while (waitpid(pid, &st, WNOHANG) == 0) {
		ck_assert_msg(h_ms_now() < end, "the other user's client hangs");
		h_pump();
		usleep(500);
	}
	ck_assert(WIFEXITED(st));
	if (WEXITSTATUS(st) == 101)
		return (-1);
	ck_assert_msg(WEXITSTATUS(st) < 100, "the other user's client "
	    "failed: %d", WEXITSTATUS(st));
	return (WEXITSTATUS(st));
}

/*
 * Root, the daemon's user and the control group may use the main socket;
 * anyone may use the read-only one.  Needs root (to be someone else).
 */
START_TEST(other_users)
{
	struct passwd *pw = getpwnam("nobody");
	struct group *gr;
	struct stat st;

	if (geteuid() != 0 || pw == NULL) {
		fprintf(stderr, "other_users: not root or no user nobody; "
		    "not checked\n");
		return;
	}
	gr = getgrgid(pw->pw_gid);
	/* Modes: 0660 for the main socket, 0666 for the read-only one. */
	ck_assert_int_eq(stat(sock_path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0660);
	ck_assert_int_eq(stat(ro_path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0666);
	ck_assert_int_eq(chmod(dir, 0755), 0);
	/* The file mode keeps the other user out of the main socket... */
	ck_assert_int_eq(other_user_request(sock_path, pw->pw_uid,
	    pw->pw_gid, NOGRP), -1);
	/* ...and if it did not, the daemon itself would refuse. */
	ck_assert_int_eq(chmod(sock_path, 0666), 0);
	ck_assert_int_eq(other_user_request(sock_path, pw->pw_uid,
	    pw->pw_gid, NOGRP), CTL_EPERM);
	/* The read-only socket serves anyone. */
	ck_assert_int_eq(other_user_request(ro_path, pw->pw_uid, pw->pw_gid,
	    NOGRP), CTL_OK);
	/* The control group may use the main socket; the file is its. */
	if (gr == NULL)
		return;
	control_stop();
	ck_assert_int_eq(control_start(sock_path, gr->gr_name, ro_path), 0);
	ck_assert_int_eq(stat(sock_path, &st), 0);
	ck_assert_uint_eq(st.st_gid, gr->gr_gid);
	ck_assert_int_eq(other_user_request(sock_path, pw->pw_uid,
	    gr->gr_gid, NOGRP), CTL_OK);
	/* Members of the group, as usual, through supplementary groups. */
	ck_assert_int_eq(other_user_request(sock_path, pw->pw_uid, 1,
	    gr->gr_gid), CTL_OK);
	/* Another group is not enough: the file keeps it out, and if it
	 * did not, the daemon would. */
	ck_assert_int_eq(other_user_request(sock_path, pw->pw_uid, 1, NOGRP),
	    -1);
	ck_assert_int_eq(chmod(sock_path, 0666), 0);
	ck_assert_int_eq(other_user_request(sock_path, pw->pw_uid, 1, NOGRP),
	    CTL_EPERM);
	/* The group by number (no group database needed). */
	control_stop();
	{
		char num[16];

		snprintf(num, sizeof(num), "%u", (unsigned)gr->gr_gid);
		ck_assert_int_eq(control_start(sock_path, num, ro_path), 0);
	}
	ck_assert_int_eq(stat(sock_path, &st), 0);
	ck_assert_uint_eq(st.st_gid, gr->gr_gid);
	ck_assert_int_eq(other_user_request(sock_path, pw->pw_uid, 1,
	    gr->gr_gid), CTL_OK);
}
END_TEST

/*
 * A control socket something answers on is never taken over (a second
 * daemon must fail); a stale socket file is replaced; a file that is not a
 * socket is left alone.
 */
START_TEST(socket_takeover)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char other[300];
	FILE *fp;
	int l, fd;

	/* The fixture's listener answers on sock_path. */
	ck_assert_int_ne(control_start(sock_path, NULL, NULL), 0);
	fd = cl_connect(sock_path);
	expect_version_ok(fd);
	close(fd);
	control_stop();
	ck_assert_int_eq(access(sock_path, F_OK), -1);	/* removed on stop */

	/* Someone else listens on other: refused, and left as it was. */
	snprintf(other, sizeof(other), "%s/other.sock", dir);
	ck_assert_uint_lt(strlen(other), sizeof(sun.sun_path));
	memcpy(sun.sun_path, other, strlen(other) + 1);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(l, 4), 0);
	ck_assert_int_ne(control_start(other, NULL, NULL), 0);
	ck_assert_int_eq(access(other, F_OK), 0);
	/* The main socket is fine but the read-only one is taken: nothing
	 * is left listening. */
	ck_assert_int_ne(control_start(sock_path, NULL, other), 0);
	ck_assert_int_eq(access(sock_path, F_OK), -1);
	close(l);

	/* Now other is a stale socket file: replaced. */
	ck_assert_int_eq(access(other, F_OK), 0);
	ck_assert_int_eq(control_start(other, NULL, NULL), 0);
	fd = cl_connect(other);
	expect_version_ok(fd);
	close(fd);
	control_stop();

	/* Not a socket at all: left alone. */
	fp = fopen(other, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("keep me\n", fp);
	fclose(fp);
	ck_assert_int_ne(control_start(other, NULL, NULL), 0);
	ck_assert_int_eq(access(other, F_OK), 0);
	/* A group that does not exist. */
	ck_assert_int_ne(control_start(sock_path, "nvmfd-no-such-group-x",
	    NULL), 0);
	ck_assert_int_eq(control_start(sock_path, NULL, ro_path), 0);
	fd = cl_connect(ro_path);
	expect_version_ok(fd);
	close(fd);
}
END_TEST

/* ------------------------------------------------------ command table */

struct run {
	struct cmd_ctx	ctx;
	char		*text;		/* rendered output */
	int		code;
};

static void
run_free(struct run *r)
{
	free(r->text);
	memset(r, 0, sizeof(*r));
}

/* cmd_execute on a copy of the arguments, as the daemon does it, then
 * render the output as the daemon would. */
static int
vrun(struct run *r, bool json, bool readonly, const char *const *args)
{
	char *argv[CTL_MAX_ARGS + 1];
	struct evbuffer *b;
	int argc = 0;
	size_t len;

	memset(r, 0, sizeof(*r));
	for (; args[argc] != NULL; argc++) {
		argv[argc] = strdup(args[argc]);
		ck_assert_ptr_nonnull(argv[argc]);
	}
	argv[argc] = NULL;
	r->ctx.json = json;
	r->ctx.readonly_client = readonly;
	r->ctx.out = out_new();
	r->ctx.text = evbuffer_new();
	ck_assert_ptr_nonnull(r->ctx.out);
	ck_assert_ptr_nonnull(r->ctx.text);
	r->code = cmd_execute(&r->ctx, argc, argv);
	b = r->ctx.text;
	if (r->code == CTL_OK)
		ck_assert_int_eq(out_render(r->ctx.out, b, json), 0);
	len = evbuffer_get_length(b);
	r->text = malloc(len + 1);
	ck_assert_ptr_nonnull(r->text);
	evbuffer_remove(b, r->text, len);
	r->text[len] = '\0';
	out_free(r->ctx.out);
	evbuffer_free(b);
	r->ctx.out = NULL;
	r->ctx.text = NULL;
	r->ctx.argv = NULL;
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	h_pump();
	return (r->code);
}

static int
run(struct run *r, ...)
{
	const char *args[CTL_MAX_ARGS + 2];
	int n = 0;
	va_list ap;

	va_start(ap, r);
	while ((args[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	return (vrun(r, false, false, args));
}

/* The command must give code and an error naming what. */
#define EXPECT(code, what, ...) do {					\
	struct run r_;							\
	int rc_ = run(&r_, __VA_ARGS__, NULL);				\
	ck_assert_msg(rc_ == (code), "%s: %d (%s), expected %d",	\
	    #__VA_ARGS__, rc_, r_.ctx.err, (code));			\
	ck_assert_msg(strstr(r_.ctx.err, (what)) != NULL,		\
	    "%s: error '%s' does not mention '%s'", #__VA_ARGS__,	\
	    r_.ctx.err, (what));					\
	run_free(&r_);							\
} while (0)

#define OK(...) do {							\
	struct run r_;							\
	int rc_ = run(&r_, __VA_ARGS__, NULL);				\
	ck_assert_msg(rc_ == CTL_OK, "%s: %d (%s)", #__VA_ARGS__, rc_,	\
	    r_.ctx.err);						\
	run_free(&r_);							\
} while (0)

START_TEST(help_names)
{
	struct evbuffer *b = evbuffer_new();
	char *text, *line, *p;
	int n = 0;
	size_t len;

	ck_assert_ptr_nonnull(b);
	cmd_help_text(NULL, b);
	len = evbuffer_get_length(b);
	text = malloc(len + 1);
	ck_assert_ptr_nonnull(text);
	evbuffer_remove(b, text, len);
	text[len] = '\0';
	evbuffer_free(b);

	p = strstr(text, "\ncommands:\n");
	ck_assert_ptr_nonnull(p);
	p += strlen("\ncommands:\n");
	/* "  name   help" lines up to the blank line. */
	while ((line = strsep(&p, "\n")) != NULL && *line != '\0') {
		char name[64];
		struct run r;
		const char *args[] = { "help", name, NULL };

		ck_assert_int_eq(sscanf(line, " %63s", name), 1);
		n++;
		/* perf runs inside nvmfctl; it is not the daemon's. */
		if (strcmp(name, "perf") == 0)
			continue;
		ck_assert_msg(cmd_find(name) != NULL, "'%s' is in the help "
		    "but not in the command table", name);
		ck_assert_str_eq(cmd_find(name)->name, name);
		/* help NAME describes it. */
		ck_assert_int_eq(vrun(&r, false, false, args), CTL_OK);
		ck_assert_msg(strncmp(r.text, "usage: nvmfctl ", 15) == 0 &&
		    strstr(r.text, name) != NULL, "%s", r.text);
		run_free(&r);
		/* ...also on the read-only socket. */
		ck_assert_int_eq(vrun(&r, false, true, args), CTL_OK);
		run_free(&r);
	}
	ck_assert_int_ge(n, 26);
	free(text);
	ck_assert_ptr_null(cmd_find("nonesuch"));
	ck_assert_ptr_null(cmd_find(""));
	EXPECT(CTL_EUSAGE, "unknown command 'nonesuch'", "help", "nonesuch");
}
END_TEST

/* Every read-only command answers on a cmd_ctx, tables and JSON. */
START_TEST(readonly_commands)
{
	static const char *const cmds[][4] = {
		{ "version" }, { "list-subsys" }, { "show-subsys", NQN_A },
		{ "list-ns", NQN_A }, { "list-hosts", NQN_B },
		{ "list-ports" }, { "list-referrals" }, { "list-ctrl" },
		{ "list-ctrl", "--subsys", NQN_A }, { "stats" },
		{ "stats", "--queues" }, { "stats", "--subsys", NQN_B },
		{ "show-config" }, { "help" }, { "help", "add-ns" },
	};

	for (size_t i = 0; i < nitems(cmds); i++) {
		const struct cmd_entry *e = cmd_find(cmds[i][0]);
		struct run r;

		ck_assert_ptr_nonnull(e);
		ck_assert_msg(e->flags & CMD_READONLY, "%s", e->name);
		ck_assert_msg(vrun(&r, false, true, cmds[i]) == CTL_OK,
		    "%s: %s", cmds[i][0], r.ctx.err);
		ck_assert_msg(r.text[0] != '\0', "%s: no output", cmds[i][0]);
		run_free(&r);
		/* JSON for every one of them, show-config and help too. */
		ck_assert_int_eq(vrun(&r, true, true, cmds[i]), CTL_OK);
		ck_assert_msg(r.text[0] == '{' &&
		    r.text[strlen(r.text) - 2] == '}', "%s --json: %s",
		    cmds[i][0], r.text);
		run_free(&r);
	}
}
END_TEST

START_TEST(json_text_commands)
{
	const char *show[] = { "show-config", NULL };
	const char *help[] = { "help", NULL };
	const char *help1[] = { "help", "set-ns", NULL };
	struct run r;

	/* The YAML as one JSON string: newlines and quotes escaped. */
	ck_assert_int_eq(vrun(&r, true, false, show), CTL_OK);
	ck_assert_msg(strncmp(r.text, "{\n  \"config\": \"# nvmfd ", 22) == 0,
	    "%s", r.text);
	ck_assert_ptr_nonnull(strstr(r.text, "\\u000asubsystems:"));
	ck_assert_ptr_nonnull(strstr(r.text, "nqn: \\\"" NQN_A "\\\""));
	{
		/* "{", the value and "}" on their own lines, nothing else. */
		int nl = 0;

		for (const char *c = r.text; *c; c++)
			nl += *c == '\n';
		ck_assert_int_eq(nl, 3);
	}
	run_free(&r);
	ck_assert_int_eq(vrun(&r, true, false, help), CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.text, "\"commands\": ["));
	ck_assert_ptr_nonnull(strstr(r.text, "\"name\": \"reload\""));
	ck_assert_ptr_nonnull(strstr(r.text, "\"name\": \"perf\""));
	run_free(&r);
	ck_assert_int_eq(vrun(&r, true, false, help1), CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.text, "\"name\": \"set-ns\""));
	ck_assert_ptr_nonnull(strstr(r.text, "\"name\": \"--readonly\""));
	run_free(&r);
}
END_TEST

START_TEST(not_found)
{
	EXPECT(CTL_ENOENT, NQN_NONE, "show-subsys", NQN_NONE);
	EXPECT(CTL_ENOENT, NQN_NONE, "set-subsys", NQN_NONE, "--model", "x");
	EXPECT(CTL_ENOENT, NQN_NONE, "del-subsys", NQN_NONE);
	EXPECT(CTL_ENOENT, NQN_NONE, "list-ns", NQN_NONE);
	EXPECT(CTL_ENOENT, NQN_NONE, "add-ns", NQN_NONE, "--backend", "ram",
	    "--size", "1M");
	EXPECT(CTL_ENOENT, NQN_NONE, "set-ns", NQN_NONE, "1", "--readonly",
	    "on");
	EXPECT(CTL_ENOENT, "no namespace 2", "set-ns", NQN_A, "2",
	    "--readonly", "on");
	EXPECT(CTL_ENOENT, NQN_NONE, "del-ns", NQN_NONE, "1");
	EXPECT(CTL_ENOENT, "no namespace 2", "del-ns", NQN_A, "2");
	EXPECT(CTL_ENOENT, "no namespace 1024", "del-ns", NQN_A, "1024");
	EXPECT(CTL_ENOENT, NQN_NONE, "list-hosts", NQN_NONE);
	EXPECT(CTL_ENOENT, NQN_NONE, "add-host", NQN_NONE, HOST_1);
	EXPECT(CTL_ENOENT, NQN_NONE, "del-host", NQN_NONE, HOST_1);
	EXPECT(CTL_ENOENT, "not listed", "del-host", NQN_A, HOST_1);
	EXPECT(CTL_ENOENT, "no port 9", "del-port", "9");
	EXPECT(CTL_ENOENT, "no referral to 192.0.2.99", "del-referral",
	    "192.0.2.99");
	EXPECT(CTL_ENOENT, "no referral to 192.0.2.1 port 4420",
	    "del-referral", "192.0.2.1", "4420");
	EXPECT(CTL_ENOENT, "no controller 1", "terminate", "1");
	EXPECT(CTL_ENOENT, "no controller 7", "terminate", "7", "--subsys",
	    NQN_A);
	EXPECT(CTL_ENOENT, NQN_NONE, "list-ctrl", "--subsys", NQN_NONE);
	EXPECT(CTL_ENOENT, NQN_NONE, "stats", "--subsys", NQN_NONE);
	/* Malformed IDs are usage errors, not missing objects. */
	EXPECT(CTL_EUSAGE, "bad NSID", "del-ns", NQN_A, "0");
	EXPECT(CTL_EUSAGE, "bad NSID", "del-ns", NQN_A, "1025");
	EXPECT(CTL_EUSAGE, "bad NSID", "set-ns", NQN_A, "x", "--readonly",
	    "on");
	EXPECT(CTL_EUSAGE, "bad port ID", "del-port", "-1");
	EXPECT(CTL_EUSAGE, "bad controller ID", "terminate", "0");
	EXPECT(CTL_EUSAGE, "bad controller ID", "terminate", "65520");
	/* Nothing changed. */
	ck_assert_ptr_nonnull(namespace_find(subsystem_find(running_config,
	    NQN_A), 1));
	ck_assert_ptr_nonnull(TAILQ_FIRST(&running_config->referrals));
}
END_TEST

START_TEST(already_exists)
{
	EXPECT(CTL_EEXIST, NQN_A, "add-subsys", NQN_A);
	EXPECT(CTL_EEXIST, "namespace 1 already", "add-ns", NQN_A, "--nsid",
	    "1", "--backend", "ram", "--size", "1M");
	EXPECT(CTL_EEXIST, "namespace 3 already", "add-ns", NQN_A, "--nsid=3",
	    "--backend", "ram", "--size", "1M");
	/* The same UUID as a running namespace, in another subsystem. */
	EXPECT(CTL_EEXIST, "UUID", "add-ns", NQN_B, "--backend", "ram",
	    "--size", "1M", "--uuid", UUID_A1);
	EXPECT(CTL_EEXIST, "allowed already", "add-host", NQN_B, HOST_1);
	EXPECT(CTL_EEXIST, "referral exists", "add-referral", "--address",
	    "192.0.2.1");
	EXPECT(CTL_EEXIST, "referral exists", "add-referral", "--address",
	    "192.0.2.1", "--port", "8009", "--port-id", "3");
	EXPECT(CTL_EEXIST, "port 1", "add-port", "--id", "1", "--address",
	    "127.0.0.2", "--port", "24528");

	/* What was added is a duplicate the second time. */
	OK("add-subsys", "nqn.2026-11.io.nvmfd.test:new", "--model", "m",
	    "--hosts", HOST_1);
	EXPECT(CTL_EEXIST, "exists", "add-subsys",
	    "nqn.2026-11.io.nvmfd.test:new");
	OK("add-host", NQN_A, "nqn.2026-11.io.nvmfd.test:h9");
	EXPECT(CTL_EEXIST, "allowed already", "add-host", NQN_A,
	    "nqn.2026-11.io.nvmfd.test:h9");
	OK("add-referral", "--address", "192.0.2.2", "--port", "4420");
	EXPECT(CTL_EEXIST, "referral exists", "add-referral", "--address",
	    "192.0.2.2", "--port", "4420");
	OK("add-referral", "--address", "192.0.2.2", "--port", "4421");
}
END_TEST

START_TEST(add_ns_options)
{
	struct subsystem *ss = subsystem_find(running_config, NQN_A);
	struct namespace *ns;
	struct run r;

	EXPECT(CTL_EUSAGE, "--backend is required", "add-ns", NQN_A, "--size",
	    "1M");
	EXPECT(CTL_EUSAGE, "--backend:", "add-ns", NQN_A, "--backend", "tape");
	EXPECT(CTL_EUSAGE, "--size:", "add-ns", NQN_A, "--backend", "ram",
	    "--size", "1X");
	EXPECT(CTL_EUSAGE, "--size:", "add-ns", NQN_A, "--backend", "ram",
	    "--size", "");
	EXPECT(CTL_EUSAGE, "--size:", "add-ns", NQN_A, "--backend", "ram",
	    "--size", "-5");
	EXPECT(CTL_EUSAGE, "--size:", "add-ns", NQN_A, "--backend", "ram",
	    "--size", "0");
	EXPECT(CTL_EUSAGE, "--block-size:", "add-ns", NQN_A, "--backend",
	    "ram", "--size", "1M", "--block-size", "1000");
	EXPECT(CTL_EUSAGE, "--block-size:", "add-ns", NQN_A, "--backend",
	    "ram", "--size", "1M", "--block-size", "big");
	EXPECT(CTL_EUSAGE, "--uuid:", "add-ns", NQN_A, "--backend", "ram",
	    "--size", "1M", "--uuid", "zz");
	EXPECT(CTL_EUSAGE, "--uuid:", "add-ns", NQN_A, "--backend", "ram",
	    "--size", "1M", "--uuid", "0b1d2c3e-4f50-4a6b-8c7d-9e0f1a2b3c4");
	EXPECT(CTL_EUSAGE, "--nguid:", "add-ns", NQN_A, "--backend", "ram",
	    "--size", "1M", "--nguid", "0011");
	EXPECT(CTL_EUSAGE, "--eui64:", "add-ns", NQN_A, "--backend", "ram",
	    "--size", "1M", "--eui64", "xyz");
	EXPECT(CTL_EUSAGE, "--nsid:", "add-ns", NQN_A, "--backend", "ram",
	    "--size", "1M", "--nsid", "0");
	EXPECT(CTL_EUSAGE, "--nsid:", "add-ns", NQN_A, "--backend", "ram",
	    "--size", "1M", "--nsid", "1025");
	EXPECT(CTL_EUSAGE, "--path", "add-ns", NQN_A, "--backend", "file");
	/* YAML in a value is a value, not structure. */
	EXPECT(CTL_EUSAGE, "--size:", "add-ns", NQN_A, "--backend", "ram",
	    "--size", "1M\n        readonly: true");
	/* None of them left a namespace behind. */
	ck_assert_ptr_null(namespace_find(ss, 2));

	/* The lowest free NSID, the options as given. */
	ck_assert_int_eq(run(&r, "add-ns", NQN_A, "--backend", "ram", "--size",
	    "2M", "--block-size", "4096", "--readonly", "--uuid",
	    "11111111-2222-4333-8444-555555555555", NULL), CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.text, "nsid"));
	ck_assert_ptr_nonnull(strstr(r.text, "2"));
	run_free(&r);
	ns = namespace_find(ss, 2);
	ck_assert_ptr_nonnull(ns);
	ck_assert(ns->readonly);
	ck_assert_uint_eq(ns->nlb << ns->lba_shift, 2u << 20);
	ck_assert_uint_eq(1u << ns->lba_shift, 4096);
	ck_assert_uint_eq(ns->uuid[0], 0x11);
	OK("add-ns", NQN_A, "--backend=ram", "--size=1M");
	ck_assert_ptr_nonnull(namespace_find(ss, 4));

	/* set-ns and del-ns on it. */
	EXPECT(CTL_EUSAGE, "--readonly: on or off", "set-ns", NQN_A, "2",
	    "--readonly", "maybe");
	EXPECT(CTL_EUSAGE, "nothing to change", "set-ns", NQN_A, "2");
	OK("set-ns", NQN_A, "2", "--readonly", "off");
	ck_assert(!namespace_find(ss, 2)->readonly);
	OK("del-ns", NQN_A, "2");
	ck_assert_ptr_null(namespace_find(ss, 2));
	EXPECT(CTL_ENOENT, "no namespace 2", "del-ns", NQN_A, "2");
}
END_TEST

START_TEST(subsys_options)
{
	struct subsystem *ss;

	EXPECT(CTL_EUSAGE, "--nqn: \"not-an-nqn\" is not a valid NQN", "add-subsys",
	    "not-an-nqn");
	EXPECT(CTL_EUSAGE, "--max-io-queues:", "add-subsys",
	    "nqn.2026-11.io.nvmfd.test:q", "--max-io-queues", "zero");
	EXPECT(CTL_EUSAGE, "--ports:", "add-subsys",
	    "nqn.2026-11.io.nvmfd.test:q", "--ports", "7");
	EXPECT(CTL_EUSAGE, "is not a valid NQN", "add-host", NQN_A, "bogus");
	EXPECT(CTL_EUSAGE, "--allow-any-host: on or off", "set-subsys", NQN_A,
	    "--allow-any-host", "perhaps");
	EXPECT(CTL_EUSAGE, "--serial:", "set-subsys", NQN_A, "--serial",
	    "012345678901234567890123456789");
	ck_assert_ptr_null(subsystem_find(running_config,
	    "nqn.2026-11.io.nvmfd.test:q"));

	OK("add-subsys", "nqn.2026-11.io.nvmfd.test:q", "--serial", "SQ1",
	    "--model", "quoted \"model\"", "--hosts", HOST_1 ",nqn.2026-11.x:y",
	    "--ports", "1", "--max-io-queues", "4");
	ss = subsystem_find(running_config, "nqn.2026-11.io.nvmfd.test:q");
	ck_assert_ptr_nonnull(ss);
	ck_assert_str_eq(ss->serial, "SQ1");
	ck_assert_str_eq(ss->model, "quoted \"model\"");
	ck_assert(!ss->allow_any_host);
	ck_assert_uint_eq(ss->max_io_queues, 4);
	ck_assert_uint_eq(ss->nport_ids, 1);
	OK("set-subsys", "nqn.2026-11.io.nvmfd.test:q", "--model", "new",
	    "--allow-any-host", "on");
	ck_assert_str_eq(ss->model, "new");
	ck_assert_str_eq(ss->serial, "SQ1");
	ck_assert(ss->allow_any_host);
	OK("del-host", "nqn.2026-11.io.nvmfd.test:q", "nqn.2026-11.x:y");
	OK("del-subsys", "nqn.2026-11.io.nvmfd.test:q");
	ck_assert_ptr_null(subsystem_find(running_config,
	    "nqn.2026-11.io.nvmfd.test:q"));
}
END_TEST

/* show-config (minus its comment line) of a file saved from the running
 * state, loaded back. */
static char *
show_config(void)
{
	struct run r;
	char *p;

	ck_assert_int_eq(run(&r, "show-config", NULL), CTL_OK);
	ck_assert_msg(r.text[0] == '#', "%s", r.text);
	p = strdup(strchr(r.text, '\n') + 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_null(strstr(p, "\n#"));
	run_free(&r);
	return (p);
}

/* Output larger than one message comes in several, whole and in order
 * (socket fixture). */
START_TEST(big_output)
{
	uint8_t buf[256];
	struct answer a;
	char host[224], *direct;
	int fd = cl_connect(sock_path);

	/* Hosts of long names, not RAM namespaces: each of those reserves
	 * 1 GiB of address space, more than valgrind's client has for 400. */
	for (int i = 0; i < 400; i++) {
		snprintf(host, sizeof(host), "nqn.2026-11.io.nvmfd.test:host-"
		    "%0180d", i);
		OK("add-host", NQN_B, host);
	}
	direct = show_config();
	expect_code(fd, buf, build_req(buf, 0, "show-config", NULL), CTL_OK,
	    &a);
	ck_assert_msg(a.noutput >= 2, "%zu bytes in %d message(s)", a.out_len,
	    a.noutput);
	ck_assert_uint_le(a.max_output, 64 * 1024);
	/* The same text, but for the time in the comment line. */
	ck_assert_str_eq(strchr(a.out, '\n') + 1, direct);
	answer_free(&a);
	free(direct);
	expect_version_ok(fd);
	close(fd);
}
END_TEST

START_TEST(save_and_load)
{
	char path[300], err[512], *before, *after;
	struct config *loaded, *saved_running;
	struct run r;

	/* Live changes first, so the file has more than the start. */
	OK("add-subsys", "nqn.2026-11.io.nvmfd.test:saved", "--model",
	    "saved \"one\"", "--hosts", HOST_1, "--ports", "1");
	OK("add-ns", "nqn.2026-11.io.nvmfd.test:saved", "--backend", "ram",
	    "--size", "3M", "--block-size", "4096", "--readonly", "--nguid",
	    "00112233445566778899aabbccddeeff");
	OK("add-referral", "--address", "192.0.2.7", "--port", "4420",
	    "--port-id", "2");
	OK("set-subsys", NQN_A, "--serial", "SAVED-A");
	OK("del-ns", NQN_A, "3");
	before = show_config();
	ck_assert_ptr_nonnull(strstr(before, "SAVED-A"));

	EXPECT(CTL_EUSAGE, "absolute path", "save", "relative.yaml");
	EXPECT(CTL_EUSAGE, "name a file", "save");	/* loaded from text */
	snprintf(path, sizeof(path), "%s/no/such/dir.yaml", dir);
	EXPECT(CTL_ERR, "", "save", path);
	snprintf(path, sizeof(path), "%s/saved.yaml", dir);
	ck_assert_int_eq(run(&r, "save", path, NULL), CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.text, path));
	run_free(&r);

	loaded = config_load(path, err, sizeof(err));
	ck_assert_msg(loaded != NULL, "%s", err);
	saved_running = running_config;
	running_config = loaded;
	after = show_config();
	running_config = saved_running;
	config_free(loaded);
	ck_assert_str_eq(before, after);
	free(before);
	free(after);

	/* Without a name, save writes where the configuration came from. */
	free(running_config->path);
	running_config->path = strdup(path);
	unlink(path);
	OK("save");
	ck_assert_int_eq(access(path, R_OK), 0);
}
END_TEST

/* reload from a file: a broken one changes nothing. */
START_TEST(reload_file)
{
	char path[300];
	FILE *fp;
	struct run r;

	EXPECT(CTL_ERR, "no file to reload", "reload");
	snprintf(path, sizeof(path), "%s/reload.yaml", dir);
	running_config->path = strdup(path);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(config_text, fp);
	fputs("bogus_key: 1\n", fp);
	fclose(fp);
	ck_assert_int_eq(run(&r, "reload", NULL), CTL_ERR);
	ck_assert_msg(strstr(r.ctx.err, "reload.yaml:") != NULL &&
	    strstr(r.ctx.err, "bogus_key") != NULL, "%s", r.ctx.err);
	run_free(&r);
	ck_assert_ptr_nonnull(subsystem_find(running_config, NQN_B));

	/* Without NQN_B and with another model for NQN_A. */
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "ports:\n  - {id: 1, address: 127.0.0.1, port: 24529}\n"
	    "subsystems:\n  - nqn: %s\n    model: reloaded\n"
	    "    namespaces:\n"
	    "      - {nsid: 1, backend: ram, size: 1M, uuid: %s}\n", NQN_A,
	    UUID_A1);
	fclose(fp);
	OK("reload");
	ck_assert_ptr_null(subsystem_find(running_config, NQN_B));
	ck_assert_str_eq(subsystem_find(running_config, NQN_A)->model,
	    "reloaded");
	ck_assert_ptr_null(namespace_find(subsystem_find(running_config,
	    NQN_A), 3));
	ck_assert_ptr_null(TAILQ_FIRST(&running_config->referrals));
}
END_TEST

/* DH-HMAC-CHAP keys on hosts: checked, rotated, listed as "host" or
 * "bidirectional" but never shown, hidden by show-config and kept out of a
 * saved file unless asked for. */
#define KEY_A	"DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:"
#define KEY_BAD	"DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:"
#define HOST_K	"nqn.2026-11.io.nvmfd.test:keyed"

START_TEST(dhchap_hosts)
{
	char path[300], keyfile[300], arg[310];
	struct subsystem *ss = subsystem_find(running_config, NQN_B);
	struct host *h;
	struct stat st;
	struct run r;
	FILE *fp;

	EXPECT(CTL_EUSAGE, "CRC-32", "add-host", NQN_B, HOST_K,
	    "--dhchap-secret", KEY_BAD);
	EXPECT(CTL_EUSAGE, "needs a host key", "add-host", NQN_B, HOST_K,
	    "--dhchap-ctrl-secret", KEY_A);
	ck_assert_ptr_null(host_find(ss, HOST_K));
	OK("add-host", NQN_B, HOST_K, "--dhchap-secret", KEY_A);
	h = host_find(ss, HOST_K);
	ck_assert_uint_eq(h->key.len, 32);
	ck_assert_int_eq(run(&r, "list-hosts", NQN_B, NULL), CTL_OK);
	ck_assert_ptr_null(strstr(r.text, "AAECAw"));
	ck_assert_ptr_nonnull(strstr(r.text, "host"));
	run_free(&r);
	ck_assert_int_eq(run(&r, "show-config", NULL), CTL_OK);
	ck_assert_ptr_null(strstr(r.text, "AAECAw"));
	run_free(&r);
	ck_assert_int_eq(run(&r, "show-config", "--show-secrets", NULL), CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.text, KEY_A));
	run_free(&r);

	snprintf(path, sizeof(path), "%s/secrets.yaml", dir);
	EXPECT(CTL_EUSAGE, "--show-secrets", "save", path);
	ck_assert_int_eq(access(path, F_OK), -1);
	OK("save", "--show-secrets", path);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 077, 0);

	/* A key file: refused while others may read it. */
	snprintf(keyfile, sizeof(keyfile), "%s/k.key", dir);
	fp = fopen(keyfile, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(KEY_A "\n", fp);
	fclose(fp);
	ck_assert_int_eq(chmod(keyfile, 0640), 0);
	snprintf(arg, sizeof(arg), "@%s", keyfile);
	EXPECT(CTL_EUSAGE, "mode 0640", "set-host", NQN_B, HOST_K,
	    "--dhchap-ctrl-secret", arg);
	ck_assert_uint_eq(h->ctrl_key.len, 0);
	ck_assert_int_eq(chmod(keyfile, 0600), 0);
	OK("set-host", NQN_B, HOST_K, "--dhchap-ctrl-secret", arg);
	ck_assert_uint_eq(h->ctrl_key.len, 32);
	ck_assert_str_eq(h->dhchap_ctrl_secret, arg);
	ck_assert_int_eq(run(&r, "list-hosts", NQN_B, NULL), CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.text, "bidirectional"));
	run_free(&r);
	EXPECT(CTL_EUSAGE, "nothing to change", "set-host", NQN_B, HOST_K);
	EXPECT(CTL_ENOENT, "not listed", "set-host", NQN_B, HOST_1 "x",
	    "--dhchap-secret", KEY_A);
	/* "" removes keys; then nothing inline is left to hide. */
	OK("set-host", NQN_B, HOST_K, "--dhchap-secret", "",
	    "--dhchap-ctrl-secret", "");
	ck_assert_uint_eq(h->key.len, 0);
	ck_assert_ptr_null(h->dhchap_secret);
	OK("save", path);
	unlink(keyfile);
}
END_TEST

/* Discovery keys: the host commands with the discovery NQN reach the
 * discovery section; set-subsys there takes --allow-any-host and offers
 * only; show-config writes the section, secrets hidden. */
#define DISC	NVMF_DISCOVERY_NQN

START_TEST(discovery_hosts)
{
	struct discovery_access *d = &running_config->discovery;
	struct host *h;
	struct run r;

	ck_assert(d->allow_any_host);
	EXPECT(CTL_EUSAGE, "CRC-32", "add-host", DISC, HOST_K,
	    "--dhchap-secret", KEY_BAD);
	OK("add-host", DISC, HOST_K, "--dhchap-secret", KEY_A);
	h = discovery_host_find(running_config, HOST_K);
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(h->key.len, 32);
	/* Not a subsystem's host: discovery keeps its own list. */
	ck_assert_ptr_null(host_find(subsystem_find(running_config, NQN_B),
	    HOST_K));
	EXPECT(CTL_EEXIST, "already", "add-host", DISC, HOST_K);
	ck_assert_int_eq(run(&r, "list-hosts", DISC, NULL), CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.text, HOST_K));
	ck_assert_ptr_null(strstr(r.text, "AAECAw"));
	run_free(&r);
	OK("set-host", DISC, HOST_K, "--dhchap-ctrl-secret", KEY_A);
	ck_assert_uint_eq(h->ctrl_key.len, 32);
	ck_assert_int_eq(run(&r, "list-hosts", DISC, NULL), CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.text, "bidirectional"));
	run_free(&r);

	ck_assert_int_eq(run(&r, "show-config", NULL), CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.text, "discovery:"));
	ck_assert_ptr_nonnull(strstr(r.text, HOST_K));
	ck_assert_ptr_null(strstr(r.text, "AAECAw"));
	run_free(&r);
	ck_assert_int_eq(run(&r, "show-config", "--show-secrets", NULL),
	    CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.text, KEY_A));
	run_free(&r);

	EXPECT(CTL_EUSAGE, "--allow-any-host", "set-subsys", DISC,
	    "--model", "x");
	EXPECT(CTL_EUSAGE, "--dhchap-hashes", "set-subsys", DISC,
	    "--dhchap-hashes", "md5");
	OK("set-subsys", DISC, "--allow-any-host", "off", "--dhchap-hashes",
	    "sha512");
	ck_assert(!d->allow_any_host);
	ck_assert_uint_eq(d->dhchap.nhashes, 1);
	ck_assert_uint_eq(d->dhchap.hashes[0], DHCHAP_SHA512);
	ck_assert(!discovery_host_allowed(running_config, HOST_1, NULL));
	ck_assert(discovery_host_allowed(running_config, HOST_K, NULL));
	ck_assert_int_eq(run(&r, "show-config", NULL), CTL_OK);
	ck_assert_ptr_nonnull(strstr(r.text, "  allow_any_host: false\n"));
	run_free(&r);

	EXPECT(CTL_ENOENT, "not listed", "del-host", DISC, HOST_1);
	OK("del-host", DISC, HOST_K);
	ck_assert_ptr_null(discovery_host_find(running_config, HOST_K));
	ck_assert(!discovery_host_allowed(running_config, HOST_K, NULL));
	OK("set-subsys", DISC, "--allow-any-host", "on");
	ck_assert(d->allow_any_host);
}
END_TEST

static Suite *
control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("socket");
	TCase *tt = tcase_create("table");

	tcase_add_checked_fixture(tc, setup_sockets, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, good_request);
	tcase_add_test(tc, bad_magic);
	tcase_add_test(tc, bad_version);
	tcase_add_test(tc, bad_type);
	tcase_add_test(tc, request_size);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, usage_errors);
	tcase_add_test(tc, readonly_socket);
	tcase_add_test(tc, pipelined);
	tcase_add_test(tc, split_writes);
	tcase_add_test(tc, big_output);
	tcase_add_test(tc, stalled_client);
	tcase_add_test(tc, client_limit);
	tcase_add_test(tc, error_isolated);
	tcase_add_test(tc, socket_takeover);
	tcase_add_test(tc, other_users);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tt, setup_table, teardown);
	tcase_set_timeout(tt, 60);
	tcase_add_test(tt, help_names);
	tcase_add_test(tt, readonly_commands);
	tcase_add_test(tt, json_text_commands);
	tcase_add_test(tt, not_found);
	tcase_add_test(tt, already_exists);
	tcase_add_test(tt, add_ns_options);
	tcase_add_test(tt, subsys_options);
	tcase_add_test(tt, save_and_load);
	tcase_add_test(tt, reload_file);
	tcase_add_test(tt, dhchap_hosts);
	tcase_add_test(tt, discovery_hosts);
	suite_add_tcase(s, tt);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(control_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
