/*
 * pingpong: plain TCP baselines over loopback for tests/bench/run.sh.
 *
 *   pingpong [-m lat|stream] [-d s2c|c2s] [-t seconds] [-s cpu] [-c cpu]
 *            [-q bytes] [-r bytes] [-b bytes] [-D depth] [-B MiB] [-z]
 *
 * One process forks a server and a client connected over 127.0.0.1 (an
 * ephemeral port, listening before the fork, so there is no race), pins
 * each to its CPU when -s/-c are given, and prints one JSON line.
 *
 * lat:    the client sends -q bytes (72, an NVMe/TCP CapsuleCmd), the
 *         server answers -r bytes (4120, a C2HData header of 24 bytes plus
 *         4 KiB of data); the client times every round trip.  This is the
 *         floor of a 4 KiB read at queue depth 1 for any NVMe/TCP target.
 *         With -D depth > 1 the client keeps that many requests in flight
 *         (the server still answers one request at a time, one recv and
 *         one send each): the rate and server CPU time per round trip of
 *         a plain TCP server under the load of a deep queue.
 * stream: one side writes -b bytes at a time as fast as it can for the
 *         duration, the other reads; -d says which side sends (s2c: the
 *         server, as a target does for reads; c2s: the client, as for
 *         writes).  Reports GB/s (10^9 bytes per second) at the receiver.
 *         The sender writes the same -b bytes over and over (cache-hot)
 *         unless -B gives a buffer of that many MiB to walk through, like
 *         a target reading a namespace larger than the caches.  -z sends
 *         with MSG_ZEROCOPY and counts the kernel's completion notices,
 *         including those that say it copied the data after all (as it
 *         must when the receiver is on the same machine).
 *
 * The server's CPU time (user + system, from getrusage of the child) is
 * reported too.  Both modes set TCP_NODELAY.  Every loop is bounded by the
 * duration (checked at least once per operation) and every socket has a
 * 5-second timeout, so a stuck peer ends the run with an error, never a
 * hang.
 */
#define _GNU_SOURCE
#include <sys/poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/errqueue.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_BUCKETS	1000000		/* 1 ns resolution below 1 ms */
#define US_BUCKETS	1000000		/* then 1 us resolution to about 1 s */
#define SOCK_TIMEOUT_S	5

enum { M_LAT, M_STREAM };

struct hello {				/* client -> server, first message */
	uint32_t	mode, dir_s2c, req, resp, blk;
	uint32_t	span_mb;	/* stream: sender cycles through this */
	uint32_t	seconds_ms;
	uint32_t	zerocopy;	/* stream: the sender uses MSG_ZEROCOPY */
};

/* MSG_ZEROCOPY accounting of the sending side. */
struct zc_stats {
	uint64_t	sends;		/* zero-copy sends made */
	uint64_t	done;		/* of those, completed by the kernel */
	uint64_t	copied;		/* of those, the kernel copied anyway */
};
static struct zc_stats zc;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
}

/* CPU seconds (user + system) of this process, or of its reaped children. */
static double
cpu_seconds(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
}

static void
die(const char *what)
{
	fprintf(stderr, "pingpong: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		die("sched_setaffinity");
}

static void
sockopts(int fd)
{
	struct timeval tv = { SOCK_TIMEOUT_S, 0 };
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		die("setsockopt");
}

/* Read exactly len bytes; 0 on success, -1 on EOF. */
static int
read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n == 0)
			return (-1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("recv");
		}
		p += n;
		len -= (size_t)n;
	}
	return (0);
}

static void
write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("send");
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Read MSG_ZEROCOPY completion notices; wait up to ms for the first. */
static void
zc_reap(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = 0 };

	if (ms > 0 && poll(&pfd, 1, ms) < 0 && errno != EINTR)
		die("poll");
	for (;;) {
		char control[128];
		struct msghdr msg = { .msg_control = control,
		    .msg_controllen = sizeof(control) };
		struct cmsghdr *cm;
		struct sock_extended_err *ee;

		if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			die("recvmsg(MSG_ERRQUEUE)");
		}
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			ee = (struct sock_extended_err *)CMSG_DATA(cm);
			if (ee->ee_errno != 0 ||
			    ee->ee_origin != SO_EE_ORIGIN_ZEROCOPY)
				continue;
			/* One notice covers sends ee_info..ee_data. */
			uint64_t n = (uint64_t)(ee->ee_data - ee->ee_info) + 1;

			zc.done += n;
			if (ee->ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
				zc.copied += n;
		}
	}
}

static void
write_full_zc(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_ZEROCOPY);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {	/* too many pages pinned */
				zc_reap(fd, SOCK_TIMEOUT_S * 1000);
				continue;
			}
			die("send(MSG_ZEROCOPY)");
		}
		zc.sends++;
		p += n;
		len -= (size_t)n;
	}
	zc_reap(fd, 0);
}

/*
 * The sender's data: filled before the fork, so neither side's CPU time
 * includes filling it (the child shares the pages, read-only).
 */
static uint8_t	*sbuf;
static size_t	 sspan;

static void
stream_buffer(uint32_t blk, uint32_t span_mb)
{
	sspan = span_mb ? (size_t)span_mb << 20 : blk;
	if (sspan < blk)
		sspan = blk;
	if ((sbuf = malloc(sspan)) == NULL)
		die("malloc");
	memset(sbuf, 0x5a, sspan);
}

/* Send for dur_ns, then shut down the write side; *t_start is when
 * sending began. */
static uint64_t
stream_send(int fd, uint32_t blk, uint64_t dur_ns, uint64_t *t_start,
    int zerocopy)
{
	uint8_t *buf = sbuf;
	size_t span = sspan, off = 0;
	uint64_t total = 0, end_ns;
	int one = 1;

	if (zerocopy &&
	    setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) != 0)
		die("setsockopt(SO_ZEROCOPY)");
	*t_start = now_ns();
	end_ns = *t_start + dur_ns;
	while (now_ns() < end_ns) {
		if (off + blk > span)
			off = 0;
		if (zerocopy)
			write_full_zc(fd, buf + off, blk);
		else
			write_full(fd, buf + off, blk);
		off += blk;
		total += blk;
	}
	shutdown(fd, SHUT_WR);
	/* Every notice, boundedly: the count of copied sends is the point. */
	for (int i = 0; zerocopy && zc.done < zc.sends && i < 50; i++)
		zc_reap(fd, 100);
	return (total);
}

/* Receive until EOF; returns bytes, and the time of the last byte. */
static uint64_t
stream_recv(int fd, uint32_t blk, uint64_t *t_first, uint64_t *t_last)
{
	uint8_t *buf = malloc(blk);
	uint64_t total = 0;

	if (buf == NULL)
		die("malloc");
	*t_first = *t_last = 0;
	for (;;) {
		ssize_t n = recv(fd, buf, blk, 0);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("recv");
		}
		if (total == 0)
			*t_first = now_ns();
		total += (uint64_t)n;
		*t_last = now_ns();
	}
	free(buf);
	return (total);
}

static void
server(int lfd, int cpu, int stats_fd)
{
	struct hello h;
	uint8_t *req, *resp;
	int fd;

	pin(cpu);
	if ((fd = accept(lfd, NULL, NULL)) < 0)
		die("accept");
	close(lfd);
	sockopts(fd);
	if (read_full(fd, &h, sizeof(h)) != 0)
		exit(1);
	if (h.mode == M_STREAM) {
		uint64_t a, b;

		if (h.dir_s2c)
			stream_send(fd, h.blk,
			    (uint64_t)h.seconds_ms * 1000000ull, &a,
			    (int)h.zerocopy);
		else
			stream_recv(fd, h.blk, &a, &b);
		close(fd);
		if (write(stats_fd, &zc, sizeof(zc)) != sizeof(zc))
			die("write");
		exit(0);
	}
	if ((req = malloc(h.req)) == NULL || (resp = calloc(1, h.resp)) == NULL)
		die("malloc");
	/* Answer until the client closes; the client bounds the time. */
	while (read_full(fd, req, h.req) == 0)
		write_full(fd, resp, h.resp);
	close(fd);
	exit(0);
}

static double
pct(const uint32_t *ns, const uint32_t *us, uint64_t total, double p)
{
	uint64_t want = (uint64_t)(p * (double)total + 0.5), seen = 0;

	if (want == 0)
		want = 1;
	for (int i = 0; i < NS_BUCKETS; i++)
		if ((seen += ns[i]) >= want)
			return (i / 1000.0);
	for (int i = 0; i < US_BUCKETS; i++)
		if ((seen += us[i]) >= want)
			return (1000.0 + i);
	return (1000.0 + US_BUCKETS);	/* beyond the histogram */
}

static void
usage(void)
{
	fprintf(stderr, "usage: pingpong [-m lat|stream] [-d s2c|c2s] "
	    "[-t seconds] [-s cpu] [-c cpu] [-q bytes] [-r bytes] [-b bytes] "
	    "[-D depth] [-B MiB] [-z]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t salen = sizeof(sa);
	struct hello h = { .mode = M_LAT, .dir_s2c = 1, .req = 72,
	    .resp = 4120, .blk = 128 * 1024, .seconds_ms = 10000 };
	int ch, lfd, fd, scpu = -1, ccpu = -1, status, depth = 1;
	int stats[2];
	double seconds = 10;
	pid_t pid;

	while ((ch = getopt(argc, argv, "B:b:c:D:d:m:q:r:s:t:z")) != -1) {
		switch (ch) {
		case 'b': h.blk = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'B': h.span_mb = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'D': depth = atoi(optarg); break;
		case 'c': ccpu = atoi(optarg); break;
		case 'd':
			if (strcmp(optarg, "s2c") == 0)
				h.dir_s2c = 1;
			else if (strcmp(optarg, "c2s") == 0)
				h.dir_s2c = 0;
			else
				usage();
			break;
		case 'm':
			if (strcmp(optarg, "lat") == 0)
				h.mode = M_LAT;
			else if (strcmp(optarg, "stream") == 0)
				h.mode = M_STREAM;
			else
				usage();
			break;
		case 'q': h.req = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'r': h.resp = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 's': scpu = atoi(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 'z': h.zerocopy = 1; break;
		default: usage();
		}
	}
	if (seconds <= 0 || seconds > 3600 || h.req == 0 || h.resp == 0 ||
	    h.req > (1u << 24) || h.resp > (1u << 24) || h.blk == 0 ||
	    h.blk > (1u << 26) || depth < 1 || depth > 1024 || h.span_mb > 4096)
		usage();
	h.seconds_ms = (uint32_t)(seconds * 1000);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket");
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(lfd, 1) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0)
		die("listen");
	if (h.mode == M_STREAM)
		stream_buffer(h.blk, h.span_mb);
	if (pipe(stats) != 0)
		die("pipe");
	if ((pid = fork()) < 0)
		die("fork");
	if (pid == 0) {
		close(stats[0]);
		server(lfd, scpu, stats[1]);
	}
	close(stats[1]);
	close(lfd);
	pin(ccpu);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket");
	sockopts(fd);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("connect");
	write_full(fd, &h, sizeof(h));

	if (h.mode == M_STREAM) {
		uint64_t bytes, t0, t1;
		double c0 = cpu_seconds(RUSAGE_SELF), secs;

		if (h.dir_s2c) {
			bytes = stream_recv(fd, h.blk, &t0, &t1);
		} else {
			bytes = stream_send(fd, h.blk,
			    (uint64_t)h.seconds_ms * 1000000ull, &t0,
			    (int)h.zerocopy);
			/* The server reads to EOF; wait for its close. */
			{
				char b;

				while (recv(fd, &b, 1, 0) > 0)
					;
			}
			t1 = now_ns();
		}
		secs = (t1 - t0) / 1e9;
		close(fd);
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			fprintf(stderr, "pingpong: server failed\n");
			return (1);
		}
		if (h.dir_s2c && read(stats[0], &zc, sizeof(zc)) != sizeof(zc))
			die("read");
		printf("{\"mode\":\"stream\",\"direction\":\"%s\","
		    "\"write_bytes\":%u,\"span_mib\":%u,\"seconds\":%.3f,"
		    "\"bytes\":%llu,"
		    "\"gbps\":%.3f,\"mbps\":%.1f,\"client_cpu_s\":%.3f,"
		    "\"server_cpu_s\":%.3f,\"zerocopy\":%s,"
		    "\"zc_sends\":%llu,\"zc_done\":%llu,\"zc_copied\":%llu}\n",
		    h.dir_s2c ? "s2c" : "c2s", h.blk, h.span_mb, secs,
		    (unsigned long long)bytes, secs > 0 ? bytes / secs / 1e9 : 0,
		    secs > 0 ? bytes / secs / 1e6 : 0, cpu_seconds(RUSAGE_SELF) - c0,
		    cpu_seconds(RUSAGE_CHILDREN), h.zerocopy ? "true" : "false",
		    (unsigned long long)zc.sends, (unsigned long long)zc.done,
		    (unsigned long long)zc.copied);
		return (0);
	} else {
		uint32_t *ns = calloc(NS_BUCKETS, sizeof(*ns));
		uint32_t *us = calloc(US_BUCKETS, sizeof(*us));
		uint8_t *req = calloc(1, h.req), *resp = malloc(h.resp);
		uint64_t *sent = calloc(depth, sizeof(*sent));
		uint64_t n = 0, sum = 0, max = 0, t0, end, t;
		double c0 = cpu_seconds(RUSAGE_SELF), secs;
		int head = 0, inflight = 0;

		if (ns == NULL || us == NULL || req == NULL || resp == NULL ||
		    sent == NULL)
			die("calloc");
		t0 = now_ns();
		end = t0 + (uint64_t)h.seconds_ms * 1000000ull;
		/* Responses come back in order: sent[] is a ring of send times. */
		for (t = t0; inflight < depth; inflight++) {
			sent[inflight] = t;
			write_full(fd, req, h.req);
		}
		while (inflight > 0) {
			uint64_t lat;

			if (read_full(fd, resp, h.resp) != 0) {
				fprintf(stderr, "pingpong: server closed\n");
				return (1);
			}
			t = now_ns();
			lat = t - sent[head];
			inflight--;
			if (t < end) {		/* send the next one */
				sent[head] = t;
				write_full(fd, req, h.req);
				inflight++;
			}
			head = (head + 1) % depth;
			/* Beyond both: pct() reports the histogram's end. */
			if (lat < NS_BUCKETS)
				ns[lat]++;
			else if (lat / 1000 - 1000 < US_BUCKETS)
				us[lat / 1000 - 1000]++;
			sum += lat;
			if (lat > max)
				max = lat;
			n++;
		}
		secs = (t - t0) / 1e9;
		c0 = cpu_seconds(RUSAGE_SELF) - c0;
		close(fd);
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			fprintf(stderr, "pingpong: server failed\n");
			return (1);
		}
		printf("{\"mode\":\"lat\",\"request_bytes\":%u,"
		    "\"response_bytes\":%u,\"depth\":%d,\"seconds\":%.3f,"
		    "\"round_trips\":%llu,"
		    "\"rtt_per_s\":%.0f,\"lat_avg_us\":%.2f,\"lat_p50_us\":%.2f,"
		    "\"lat_p99_us\":%.2f,\"lat_p999_us\":%.2f,"
		    "\"lat_max_us\":%.2f,\"client_cpu_us_per_rtt\":%.3f,"
		    "\"server_cpu_us_per_rtt\":%.3f}\n",
		    h.req, h.resp, depth, secs, (unsigned long long)n,
		    secs > 0 ? n / secs : 0, n ? sum / 1e3 / n : 0,
		    pct(ns, us, n, 0.5), pct(ns, us, n, 0.99),
		    pct(ns, us, n, 0.999), max / 1e3,
		    n ? c0 * 1e6 / n : 0, n ? cpu_seconds(RUSAGE_CHILDREN) * 1e6 / n : 0);
		return (0);
	}
}
