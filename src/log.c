/*
 * Logging: stderr in the foreground, syslog when daemonized.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "nvmfd.h"

int log_debug_enabled;
static int log_to_stderr = 1;
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;

void
log_init(int to_stderr, int debug)
{
	log_to_stderr = to_stderr;
	log_debug_enabled = debug;
	if (!to_stderr)
		openlog("nvmfd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

static void
vlog(int pri, const char *fmt, va_list ap, const char *suffix)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_to_stderr) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		pthread_mutex_lock(&log_mtx);
		fprintf(stderr, "%02d:%02d:%02d.%03ld nvmfd: %s%s%s\n",
		    tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		    msg, suffix ? ": " : "", suffix ? suffix : "");
		pthread_mutex_unlock(&log_mtx);
	} else
		syslog(pri, "%s%s%s", msg, suffix ? ": " : "", suffix ? suffix : "");
}

#define LOGFN(name, pri, witherr)				\
void								\
name(const char *fmt, ...)					\
{								\
	int saved = errno;					\
	va_list ap;						\
								\
	if ((pri) == LOG_DEBUG && !log_debug_enabled)		\
		return;						\
	va_start(ap, fmt);					\
	vlog(pri, fmt, ap, (witherr) ? strerror(saved) : NULL);	\
	va_end(ap);						\
	errno = saved;						\
}

LOGFN(log_warn, LOG_WARNING, 1)
LOGFN(log_warnx, LOG_WARNING, 0)
LOGFN(log_info, LOG_INFO, 0)
LOGFN(log_debug, LOG_DEBUG, 0)

/*
 * Lines a remote peer can cause (connections, bad PDUs, refused Connects)
 * share one token bucket: LOG_PEER_BURST at once, then LOG_PEER_RATE a
 * second.  What goes over is counted, and the next line that passes says
 * how many were left out, so a flood of bad connections cannot fill the
 * disk but never goes unseen.
 */
#define LOG_PEER_RATE	20
#define LOG_PEER_BURST	200

static struct {
	pthread_mutex_t	mtx;
	double		tokens;
	uint64_t	last_ns;
	uint64_t	dropped;
} peer_bucket = { PTHREAD_MUTEX_INITIALIZER, LOG_PEER_BURST, 0, 0 };

/* True if a peer line may be written now; *dropped: lines left out since
 * the last one that was. */
static bool
peer_line_ok(uint64_t *dropped)
{
	struct timespec ts;
	uint64_t now;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
	pthread_mutex_lock(&peer_bucket.mtx);
	if (peer_bucket.last_ns != 0)
		peer_bucket.tokens += (double)(now - peer_bucket.last_ns) *
		    LOG_PEER_RATE / 1e9;
	if (peer_bucket.tokens > LOG_PEER_BURST)
		peer_bucket.tokens = LOG_PEER_BURST;
	peer_bucket.last_ns = now;
	if ((ok = peer_bucket.tokens >= 1)) {
		peer_bucket.tokens -= 1;
		*dropped = peer_bucket.dropped;
		peer_bucket.dropped = 0;
	} else
		peer_bucket.dropped++;
	pthread_mutex_unlock(&peer_bucket.mtx);
	return (ok);
}

static void
vlog_peer(int pri, const char *fmt, va_list ap)
{
	uint64_t dropped;

	if (!peer_line_ok(&dropped))
		return;
	if (dropped > 0)
		log_warnx("%llu lines about peers left out (more than %d a "
		    "second)", (unsigned long long)dropped, LOG_PEER_RATE);
	vlog(pri, fmt, ap, NULL);
}

void
log_peer_warnx(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_peer(LOG_WARNING, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_peer_info(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_peer(LOG_INFO, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
