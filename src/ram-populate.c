/*
 * Background population of RAM namespaces.
 *
 * The first touch of anonymous memory is slow: the kernel finds (and with
 * THP's usual "madvise" defrag setting, compacts for) a huge page and zeroes
 * it, and under a hypervisor the guest page may be backed for the first time
 * too.  Measured on a 2-core VM: 0.1 to 6 ms of CPU per 2 MiB chunk.  A
 * write that lands in a chunk nobody populated yet waits for that, off the
 * worker loop (backend-ram.c), so a fresh 1 GiB namespace took random 4 KiB
 * writes at a quarter of the rate of a filled one.
 *
 * So one low-priority thread populates each new writable RAM namespace
 * front to back, unless the namespace says "populate: lazy" or does not fit
 * in the memory that can be spared (what the kernel calls available, and
 * the cgroup's headroom, each less an eighth of the total kept back): those
 * stay lazy and grow chunk by chunk as hosts write.  A write that races the
 * thread populates its own chunk through the pool as before, and never waits
 * for this thread (see ram_chunk_prefill).
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nvmfd.h"

#define FILL_NICE		10	/* below the worker loops */
#define FILL_RECHECK		64	/* chunks between memory checks */
#define FILL_LOUD		(256ull << 20)	/* log at info from this size */

struct fill_job {
	TAILQ_ENTRY(fill_job) entry;
	struct namespace *ns;
	char		name[NVMFD_NQN_MAX + 16];	/* for the log */
};
TAILQ_HEAD(fill_queue, fill_job);

static pthread_mutex_t fill_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fill_more = PTHREAD_COND_INITIALIZER;
static pthread_cond_t fill_idle = PTHREAD_COND_INITIALIZER;
static struct fill_queue fill_queue = TAILQ_HEAD_INITIALIZER(fill_queue);
static struct namespace *fill_current;	/* being filled, under fill_mtx */
static atomic_bool fill_stop;		/* ram_populate_cancel wants it */
static bool fill_started;

/* "Key: N kB" from /proc/meminfo, in bytes; 0 if missing. */
static uint64_t
meminfo(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return (p ? strtoull(p + strlen(key), NULL, 10) << 10 : 0);
}

/* A small file's first line into buf; -1 if it cannot be read. */
static int
read_line(const char *path, char *buf, size_t len)
{
	FILE *fp = fopen(path, "re");
	int rc = -1;

	if (fp == NULL)
		return (-1);
	if (fgets(buf, (int)len, fp) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		rc = 0;
	}
	fclose(fp);
	return (rc);
}

/* The cgroup v2 limit and usage of this process; false if unlimited. */
static bool
cgroup_memory(uint64_t *max, uint64_t *cur)
{
	char cg[512], path[640], v[64];

	/* cgroup v2: a single "0::/path" line. */
	if (read_line("/proc/self/cgroup", cg, sizeof(cg)) != 0 ||
	    strncmp(cg, "0::", 3) != 0)
		return (false);
	snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", cg + 3);
	if (read_line(path, v, sizeof(v)) != 0 || strcmp(v, "max") == 0)
		return (false);
	*max = strtoull(v, NULL, 10);
	snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.current", cg + 3);
	if (read_line(path, v, sizeof(v)) != 0)
		return (false);
	*cur = strtoull(v, NULL, 10);
	return (*max > 0);
}

/* Bytes this process may still populate without crowding the machine. */
static uint64_t
memory_to_spare(void)
{
	char text[4096];
	uint64_t total, avail, spare, max, cur;
	FILE *fp;
	size_t n;

	if ((fp = fopen("/proc/meminfo", "re")) == NULL)
		return (0);
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	total = meminfo(text, "MemTotal:");
	avail = meminfo(text, "MemAvailable:");
	spare = avail > total / 8 ? avail - total / 8 : 0;
	if (cgroup_memory(&max, &cur)) {
		uint64_t room = max > cur + max / 8 ? max - cur - max / 8 : 0;

		spare = MINIMUM(spare, room);
	}
	return (spare);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + ts.tv_nsec / 1e9);
}

/*
 * Populate one namespace's untouched chunks, until done or cancelled.  A
 * namespace that grew comes back here: what it has populated already does
 * not count against the memory to spare.
 */
static void
fill_one(struct fill_job *j)
{
	struct namespace *ns = j->ns;
	uint64_t c, n = ram_chunk_count(ns), done = 0;
	uint64_t resident = ram_resident(ns), size = ns_bytes(ns);
	uint64_t todo = size > resident ? size - resident : 0;
	uint64_t spare = memory_to_spare();
	double t0 = now_s();
	bool loud;

	if (todo == 0)
		return;
	loud = todo >= FILL_LOUD;
	if (todo > spare) {
		log_info("%s: %llu MiB is more than the %llu MiB of memory to "
		    "spare; populated as it is written", j->name,
		    (unsigned long long)(todo >> 20),
		    (unsigned long long)(spare >> 20));
		return;
	}
	if (loud)
		log_info("%s: populating %llu MiB in the background", j->name,
		    (unsigned long long)(todo >> 20));
	for (c = 0; c < n; c++) {
		if (atomic_load(&fill_stop))
			return;
		/* Others use memory too: stop before the machine is short. */
		if (c % FILL_RECHECK == FILL_RECHECK - 1 &&
		    memory_to_spare() == 0) {
			log_info("%s: memory is short; %llu of %llu MiB "
			    "populated, the rest as it is written", j->name,
			    (unsigned long long)((c << ns->chunk_shift) >> 20),
			    (unsigned long long)(ns_bytes(ns) >> 20));
			return;
		}
		if (ram_chunk_prefill(ns, c))
			done++;
	}
	(loud ? log_info : log_debug)("%s: populated in %.2f s (%llu of %llu "
	    "chunks by this thread)", j->name, now_s() - t0,
	    (unsigned long long)done, (unsigned long long)n);
}

static void *
fill_main(void *arg)
{
	struct fill_job *j;

	(void)arg;
#ifdef SYS_gettid
	/* Linux nice values are per thread. */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), FILL_NICE);
#endif
	pthread_mutex_lock(&fill_mtx);
	for (;;) {
		while ((j = TAILQ_FIRST(&fill_queue)) == NULL)
			pthread_cond_wait(&fill_more, &fill_mtx);
		TAILQ_REMOVE(&fill_queue, j, entry);
		fill_current = j->ns;
		atomic_store(&fill_stop, false);	/* was for the last one */
		pthread_mutex_unlock(&fill_mtx);

		fill_one(j);
		free(j);

		pthread_mutex_lock(&fill_mtx);
		fill_current = NULL;
		pthread_cond_broadcast(&fill_idle);
	}
	return (NULL);
}

/* Called with fill_mtx held. */
static int
fill_thread_start(void)
{
	sigset_t all, old;
	pthread_t t;
	int rc;

	if (fill_started)
		return (0);
	/* Signals belong to the main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t, NULL, fill_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		log_warn("ram populate: pthread_create");
		return (-1);
	}
	pthread_detach(t);
	fill_started = true;
	return (0);
}

void
ram_populate_start(struct namespace *ns)
{
	struct fill_job *j;

	if (ns->populate == RAM_POPULATE_LAZY || ns->readonly)
		return;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_warnx("ram populate: out of memory; namespace %u is "
		    "populated as it is written", ns->nsid);
		return;
	}
	j->ns = ns;
	snprintf(j->name, sizeof(j->name), "%s namespace %u",
	    ns->subsys ? ns->subsys->nqn : "?", ns->nsid);
	pthread_mutex_lock(&fill_mtx);
	if (fill_thread_start() != 0) {
		pthread_mutex_unlock(&fill_mtx);
		free(j);
		return;
	}
	TAILQ_INSERT_TAIL(&fill_queue, j, entry);
	pthread_cond_signal(&fill_more);
	pthread_mutex_unlock(&fill_mtx);
}

/* Before the namespace's memory goes: the thread lets go of it. */
void
ram_populate_cancel(struct namespace *ns)
{
	struct fill_job *j;

	pthread_mutex_lock(&fill_mtx);
	TAILQ_FOREACH(j, &fill_queue, entry)
		if (j->ns == ns) {
			TAILQ_REMOVE(&fill_queue, j, entry);
			free(j);
			break;
		}
	if (fill_current == ns) {
		atomic_store(&fill_stop, true);
		while (fill_current == ns)
			pthread_cond_wait(&fill_idle, &fill_mtx);
	}
	pthread_mutex_unlock(&fill_mtx);
}
