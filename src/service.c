/*
 * Life as a service: a locked pidfile, the sd_notify(3) datagram protocol
 * spoken directly (so nvmfd needs no libsystemd), and the process's limits
 * and heap policy.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef HAVE_MALLOC_H
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "nvmfd.h"

static int pidfile_fd = -1;
static char *pidfile_path;

/* The pid a lock holder wrote, or 0 when unreadable or not yet written. */
static long
pidfile_read(int fd)
{
	char buf[32];
	ssize_t n;
	long pid;
	char *end;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return (0);
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || pid <= 0)
		return (0);
	return (pid);
}

int
service_pidfile_open(const char *path, char *err, size_t errlen)
{
	struct stat fst, pst;
	char buf[32];
	long pid = 0;
	int fd, len, tries;

	if (pidfile_fd >= 0) {
		snprintf(err, errlen, "%s: a pidfile is already open (%s)",
		    path, pidfile_path);
		return (-1);
	}
	for (tries = 0; ; tries++) {
		/* O_NOFOLLOW: a symlink planted in a shared directory must
		 * not make us truncate its target. */
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0) {
			snprintf(err, errlen, "pidfile %s: %s", path,
			    strerror(errno));
			return (-1);
		}
		if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
			snprintf(err, errlen, "pidfile %s: not a regular file",
			    path);
			close(fd);
			return (-1);
		}
		/* flock, not fcntl: its lock belongs to this open file, so it
		 * also excludes a second open in the same process, and a
		 * fork() does not silently drop it. */
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			int e = errno;

			if (e == EWOULDBLOCK) {
				/* The holder may not have written its pid yet. */
				for (int i = 0; i < 10; i++) {
					if ((pid = pidfile_read(fd)) != 0)
						break;
					usleep(10000);
				}
				if (pid != 0)
					snprintf(err, errlen, "pidfile %s: "
					    "already running (pid %ld)", path,
					    pid);
				else
					snprintf(err, errlen, "pidfile %s: "
					    "already running", path);
			} else
				snprintf(err, errlen, "pidfile %s: lock: %s",
				    path, strerror(e));
			close(fd);
			return (-1);
		}
		/* A previous owner may have unlinked the file between our
		 * open and our lock: then we hold a lock nobody else sees. */
		if (stat(path, &pst) == 0 && pst.st_dev == fst.st_dev &&
		    pst.st_ino == fst.st_ino)
			break;
		close(fd);
		if (tries == 5) {
			snprintf(err, errlen, "pidfile %s: keeps being "
			    "replaced", path);
			return (-1);
		}
	}

	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, len, 0) != len) {
		snprintf(err, errlen, "pidfile %s: write: %s", path,
		    strerror(errno));
		unlink(path);
		close(fd);
		return (-1);
	}
	if ((pidfile_path = strdup(path)) == NULL) {
		snprintf(err, errlen, "pidfile %s: out of memory", path);
		unlink(path);
		close(fd);
		return (-1);
	}
	pidfile_fd = fd;
	return (0);
}

void
service_pidfile_remove(void)
{
	if (pidfile_fd < 0)
		return;
	/* Unlink while still holding the lock, so a successor that locks
	 * after us never has its fresh file removed. */
	unlink(pidfile_path);
	close(pidfile_fd);
	pidfile_fd = -1;
	free(pidfile_path);
	pidfile_path = NULL;
}

/*
 * Every connection is a descriptor: raise the soft open-file limit to the
 * hard one, and say so when max_connections still does not fit under it
 * (connections beyond the limit are then refused as they arrive).
 */
void
service_raise_nofile(uint32_t max_connections)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    (uint64_t)max_connections + NOFILE_RESERVE > rl.rlim_cur)
		log_warnx("open-file limit %llu is below max_connections %u "
		    "plus %u for the daemon itself; connections beyond it "
		    "will be refused", (unsigned long long)rl.rlim_cur,
		    max_connections, NOFILE_RESERVE);
}

void
service_notify(const char *fmt, ...)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *where = getenv("NOTIFY_SOCKET");
	char msg[2048];
	size_t plen;
	socklen_t slen;
	va_list ap;
	int fd, n;

	if (where == NULL || (where[0] != '/' && where[0] != '@'))
		return;
	plen = strlen(where);
	if (plen < 2 || plen >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, where, plen);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';		/* abstract namespace */
	/* An abstract name is exactly plen bytes: no trailing NUL. */
	slen = offsetof(struct sockaddr_un, sun_path) + plen;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return;
	/* systemd >= 253 (Type=notify-reload) ignores RELOADING=1 without
	 * the time the reload started. */
	if ((strncmp(msg, "RELOADING=1", 11) == 0 ||
	    strstr(msg, "\nRELOADING=1") != NULL) &&
	    strstr(msg, "MONOTONIC_USEC=") == NULL) {
		struct timespec ts;
		int m;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		m = snprintf(msg + n, sizeof(msg) - n, "\nMONOTONIC_USEC=%llu",
		    (unsigned long long)ts.tv_sec * 1000000ULL +
		    (unsigned long long)ts.tv_nsec / 1000);
		if (m < 0 || (size_t)m >= sizeof(msg) - n)
			return;
		n += m;
	}

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("notify socket");
		return;
	}
	if (sendto(fd, msg, n, MSG_NOSIGNAL, (struct sockaddr *)&sun,
	    slen) != n)
		log_warn("notify %s", where);
	close(fd);
}

/*
 * Heap policy.  glibc gives freed memory at the top of the heap back to the
 * kernel once it passes a threshold that moves with large frees.  A reload
 * builds a second configuration and frees one: with 20,000 subsystems about
 * 54 MB, given back and faulted in again on every reload (13,500 page
 * faults, 0.45 s of the 0.53 s it took, where a VM makes a first touch cost
 * 30 us), while with 10,000 the same memory happened to stay, so reload
 * time grew 5x for 2x the subsystems.  So freed memory is kept for reuse,
 * and handed back once a minute by malloc_trim instead: a reload then costs
 * what the configuration's size says, and memory still shrinks after a big
 * deletion.
 */
#define TRIM_SECS	60

#if defined(HAVE_MALLOC_H) && defined(M_TRIM_THRESHOLD)
static void
trim_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	malloc_trim(0);
}
#endif

void
service_heap_policy(struct event_base *base)
{
#if defined(HAVE_MALLOC_H) && defined(M_TRIM_THRESHOLD)
	static struct event *trim_ev;
	struct timeval tv = { TRIM_SECS, 0 };

	(void)mallopt(M_TRIM_THRESHOLD, INT_MAX);
	/* Big tables (the YAML parser's node array is 40 MB at 20,000
	 * subsystems) come from the heap too, not from a fresh mmap. */
	(void)mallopt(M_MMAP_MAX, 0);
	if (trim_ev == NULL &&
	    (trim_ev = event_new(base, -1, EV_PERSIST, trim_cb, NULL)) != NULL)
		event_add(trim_ev, &tv);
#else
	(void)base;
#endif
}
