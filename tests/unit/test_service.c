/*
 * service.c: the pidfile (creation, exclusion by a live holder, stale files,
 * removal) and sd_notify datagrams to path and abstract sockets.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nvmfd.h"

static char dir[256];
static char pidpath[300];
static char errbuf[512];

/* Every test gets its own directory, so runs in parallel never meet. */
static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/nvmfd-svc-XXXXXX", tmp);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(pidpath, sizeof(pidpath), "%s/nvmfd.pid", dir);
	errbuf[0] = '\0';
	umask(022);
	unsetenv("NOTIFY_SOCKET");
}

static void
teardown(void)
{
	char cmd[512];

	service_pidfile_remove();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static void
read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, len - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(fd);
}

static void
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* ------------------------------------------------------------- pidfile */

START_TEST(test_pidfile_create)
{
	char buf[64], want[64];
	struct stat st;

	ck_assert_msg(service_pidfile_open(pidpath, errbuf, sizeof(errbuf)) == 0,
	    "%s", errbuf);
	read_file(pidpath, buf, sizeof(buf));
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	ck_assert_str_eq(buf, want);
	ck_assert_int_eq(stat(pidpath, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0644);
	/* Only one pidfile per process. */
	ck_assert_int_eq(service_pidfile_open(pidpath, errbuf, sizeof(errbuf)), -1);
}
END_TEST

/* A second nvmfd (this binary re-executed: fresh state) is refused while we
 * hold the pidfile, and the message names our pid. */
static const char *self;

START_TEST(test_pidfile_second_open)
{
	char buf[512], want[512];
	int pfd[2], status;
	ssize_t n;
	pid_t child;

	ck_assert_int_eq(service_pidfile_open(pidpath, errbuf, sizeof(errbuf)), 0);
	ck_assert_int_eq(pipe(pfd), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		execl(self, self, "--pidfile-open", pidpath, (char *)NULL);
		_exit(3);
	}
	close(pfd[1]);
	n = read(pfd[0], buf, sizeof(buf) - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(pfd[0]);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 1);
	snprintf(want, sizeof(want), "pidfile %s: already running (pid %ld)",
	    pidpath, (long)getpid());
	ck_assert_str_eq(buf, want);
	/* Our file is untouched. */
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	read_file(pidpath, buf, sizeof(buf));
	ck_assert_str_eq(buf, want);
}
END_TEST

/* A holder of the lock that is not us by state: "already running (pid N)". */
START_TEST(test_pidfile_locked_message)
{
	char want[512];
	int fd;

	write_file(pidpath, "4242\n");
	fd = open(pidpath, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);

	ck_assert_int_eq(service_pidfile_open(pidpath, errbuf, sizeof(errbuf)), -1);
	snprintf(want, sizeof(want), "pidfile %s: already running (pid 4242)",
	    pidpath);
	ck_assert_str_eq(errbuf, want);
	/* The holder's file is left alone. */
	read_file(pidpath, want, sizeof(want));
	ck_assert_str_eq(want, "4242\n");

	/* Once the holder is gone, the file is ours. */
	close(fd);
	ck_assert_msg(service_pidfile_open(pidpath, errbuf, sizeof(errbuf)) == 0,
	    "%s", errbuf);
}
END_TEST

/* An unlocked file left by a crash is taken over and fully rewritten. */
START_TEST(test_pidfile_stale)
{
	char buf[64], want[64];

	write_file(pidpath, "1234567890123\n");
	ck_assert_msg(service_pidfile_open(pidpath, errbuf, sizeof(errbuf)) == 0,
	    "%s", errbuf);
	read_file(pidpath, buf, sizeof(buf));
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	ck_assert_str_eq(buf, want);
}
END_TEST

START_TEST(test_pidfile_remove)
{
	ck_assert_int_eq(service_pidfile_open(pidpath, errbuf, sizeof(errbuf)), 0);
	service_pidfile_remove();
	ck_assert_int_eq(access(pidpath, F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
	service_pidfile_remove();	/* twice is harmless */
	/* And it can be taken again. */
	ck_assert_msg(service_pidfile_open(pidpath, errbuf, sizeof(errbuf)) == 0,
	    "%s", errbuf);
	ck_assert_int_eq(access(pidpath, F_OK), 0);
}
END_TEST

/* A symlink in the pidfile's place is never followed. */
START_TEST(test_pidfile_symlink)
{
	char target[300], buf[32];

	snprintf(target, sizeof(target), "%s/target", dir);
	write_file(target, "keep\n");
	ck_assert_int_eq(symlink(target, pidpath), 0);
	ck_assert_int_eq(service_pidfile_open(pidpath, errbuf, sizeof(errbuf)), -1);
	ck_assert_ptr_nonnull(strstr(errbuf, pidpath));
	read_file(target, buf, sizeof(buf));
	ck_assert_str_eq(buf, "keep\n");
}
END_TEST

START_TEST(test_pidfile_bad_dir)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/missing/nvmfd.pid", dir);
	ck_assert_int_eq(service_pidfile_open(path, errbuf, sizeof(errbuf)), -1);
	ck_assert_ptr_nonnull(strstr(errbuf, "No such file"));
}
END_TEST

/* -------------------------------------------------------------- notify */

/* Bind a datagram socket; name is a path, or "@..." for an abstract one. */
static int
bind_dgram(const char *name)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	int fd;

	ck_assert_uint_lt(len, sizeof(sun.sun_path));
	memcpy(sun.sun_path, name, len);
	if (name[0] == '@')
		sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun,
	    offsetof(struct sockaddr_un, sun_path) + len), 0);
	return (fd);
}

/* One datagram, NUL-terminated; its length is returned. */
static ssize_t
recv_one(int fd, char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	n = recv(fd, buf, len - 1, MSG_DONTWAIT);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	return (n);
}

static void
assert_nothing(int fd)
{
	char buf[16];

	ck_assert_int_eq(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
}

START_TEST(test_notify_path)
{
	char path[300], buf[256];
	int fd;

	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = bind_dgram(path);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", path, 1), 0);

	service_notify("READY=1");
	ck_assert_int_eq(recv_one(fd, buf, sizeof(buf)), 7);
	ck_assert_str_eq(buf, "READY=1");
	service_notify("STATUS=%d ports, %s", 2, "1 subsystem");
	recv_one(fd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "STATUS=2 ports, 1 subsystem");
	service_notify("STOPPING=1");
	recv_one(fd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "STOPPING=1");
	service_notify("MAINPID=%ld", (long)getpid());
	recv_one(fd, buf, sizeof(buf));
	ck_assert_int_eq(strtol(buf + 8, NULL, 10), getpid());
	assert_nothing(fd);
	close(fd);
}
END_TEST

START_TEST(test_notify_abstract)
{
	char name[64], buf[256];
	int fd;

	snprintf(name, sizeof(name), "@nvmfd-test-%ld-%ld", (long)getpid(),
	    (long)time(NULL));
	fd = bind_dgram(name);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", name, 1), 0);
	service_notify("READY=1\nSTATUS=%s", "serving");
	recv_one(fd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "READY=1\nSTATUS=serving");
	assert_nothing(fd);
	close(fd);
}
END_TEST

static unsigned long long
mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((unsigned long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

START_TEST(test_notify_reloading)
{
	char path[300], buf[256];
	unsigned long long before, after, usec;
	char *end;
	int fd;

	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = bind_dgram(path);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", path, 1), 0);

	before = mono_usec();
	service_notify("RELOADING=1");
	after = mono_usec();
	recv_one(fd, buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0,
	    "got \"%s\"", buf);
	usec = strtoull(buf + 27, &end, 10);
	ck_assert_int_eq(*end, '\0');
	ck_assert(usec >= before && usec <= after);

	/* Also when it is not the first line; never added twice. */
	service_notify("STATUS=reloading\nRELOADING=1");
	recv_one(fd, buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, "STATUS=reloading\nRELOADING=1\n"
	    "MONOTONIC_USEC=", 44) == 0, "got \"%s\"", buf);
	service_notify("RELOADING=1\nMONOTONIC_USEC=42");
	recv_one(fd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "RELOADING=1\nMONOTONIC_USEC=42");
	/* READY=1 after a reload carries nothing extra. */
	service_notify("READY=1");
	recv_one(fd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "READY=1");
	close(fd);
}
END_TEST

/* Unset, empty, relative or unreachable: nothing sent, nothing fails. */
START_TEST(test_notify_unset)
{
	char path[300], missing[300];
	int fd, cwd;

	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = bind_dgram(path);
	unsetenv("NOTIFY_SOCKET");
	service_notify("READY=1");
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", "", 1), 0);
	service_notify("READY=1");
	/* Relative: from dir, where "notify" would reach fd's socket. */
	cwd = open(".", O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(cwd, 0);
	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", "notify", 1), 0);
	service_notify("READY=1");
	ck_assert_int_eq(fchdir(cwd), 0);
	close(cwd);
	snprintf(missing, sizeof(missing), "%s/no-such-socket", dir);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", missing, 1), 0);
	service_notify("READY=1");
	assert_nothing(fd);
	close(fd);
}
END_TEST

static Suite *
service_suite(void)
{
	Suite *s = suite_create("service");
	TCase *tc;

	tc = tcase_create("pidfile");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_pidfile_create);
	tcase_add_test(tc, test_pidfile_second_open);
	tcase_add_test(tc, test_pidfile_locked_message);
	tcase_add_test(tc, test_pidfile_stale);
	tcase_add_test(tc, test_pidfile_remove);
	tcase_add_test(tc, test_pidfile_symlink);
	tcase_add_test(tc, test_pidfile_bad_dir);
	suite_add_tcase(s, tc);

	tc = tcase_create("notify");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_notify_path);
	tcase_add_test(tc, test_notify_abstract);
	tcase_add_test(tc, test_notify_reloading);
	tcase_add_test(tc, test_notify_unset);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(int argc, char *argv[])
{
	SRunner *sr;
	int failed;

	/* Child mode for test_pidfile_second_open: print the error. */
	if (argc == 3 && strcmp(argv[1], "--pidfile-open") == 0) {
		if (service_pidfile_open(argv[2], errbuf, sizeof(errbuf)) == 0)
			return (0);
		fputs(errbuf, stdout);
		return (1);
	}
	self = argv[0];
	sr = srunner_create(service_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
