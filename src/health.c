/*
 * Health counters that outlive a restart, per subsystem: the SMART log's
 * Power Cycles, Power On Hours and Unsafe Shutdowns.  With state_dir set,
 * each subsystem has a small file there, named by its NQN:
 *
 *	nvmfd-health 1
 *	power_on_seconds 86400
 *	power_cycles 3
 *	unsafe_shutdowns 1
 *	running 1
 *
 * Every start (or creation) of the subsystem is a power cycle; "running 1"
 * is written then and "running 0" at a clean stop or deletion, so a start
 * that finds "running 1" follows a crash: an unsafe shutdown.  The time
 * on is saved every 10 minutes, so a crash loses at most that much.
 * Without state_dir the counters start over with each run.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "nvmfd.h"

#define HEALTH_MAGIC	"nvmfd-health 1"
#define HEALTH_SAVE_SECS 600

static struct event *save_ev;

/* state_dir/NQN.health, bytes other than [A-Za-z0-9.:-] as %XX. */
static char *
health_path(const char *dir, const char *nqn)
{
	char name[3 * NVMFD_NQN_MAX + 1], *path;
	size_t n = 0;

	for (const char *p = nqn; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == ':' || c == '-')
			name[n++] = c;
		else
			n += snprintf(name + n, 4, "%%%02X", c);
	}
	name[n] = '\0';
	if (asprintf(&path, "%s/%s.health", dir, name) == -1)
		return (NULL);
	return (path);
}

/* Seconds on, this run included. */
uint64_t
health_power_on_seconds(const struct subsystem *ss)
{
	uint64_t now = (uint64_t)time(NULL);

	return (ss->power_on_before +
	    (now > ss->created ? now - ss->created : 0));
}

static void
health_save(struct subsystem *ss, bool running)
{
	char text[256], err[PATH_MAX + 64];
	int len;

	if (ss->health_path == NULL)
		return;
	len = snprintf(text, sizeof(text), "%s\npower_on_seconds %" PRIu64
	    "\npower_cycles %" PRIu64 "\nunsafe_shutdowns %" PRIu64
	    "\nrunning %d\n", HEALTH_MAGIC, health_power_on_seconds(ss),
	    ss->power_cycles, ss->unsafe_shutdowns, running ? 1 : 0);
	if (state_file_write(ss->health_path, text, (size_t)len, err,
	    sizeof(err)) != 0)
		log_warnx("%s: health counters not saved: %s", ss->nqn, err);
}

/* What a previous run left; a file that does not read right is logged and
 * counted over (the counters are not worth refusing to serve for). */
static void
health_load(struct subsystem *ss)
{
	char line[128], key[32];
	uint64_t v, on = 0, cycles = 0, unsafe = 0, running = 0;
	bool magic = false, bad = false;
	FILE *fp;

	if ((fp = fopen(ss->health_path, "re")) == NULL) {
		if (errno != ENOENT)
			log_warn("%s", ss->health_path);
		return;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (!magic) {
			magic = strcmp(line, HEALTH_MAGIC) == 0;
			bad |= !magic;
			continue;
		}
		if (sscanf(line, "%31s %" SCNu64, key, &v) != 2) {
			bad = true;
			continue;
		}
		if (strcmp(key, "power_on_seconds") == 0)
			on = v;
		else if (strcmp(key, "power_cycles") == 0)
			cycles = v;
		else if (strcmp(key, "unsafe_shutdowns") == 0)
			unsafe = v;
		else if (strcmp(key, "running") == 0)
			running = v;
	}
	fclose(fp);
	if (bad || !magic) {
		log_warnx("%s: not a health state file; counting from 0",
		    ss->health_path);
		return;
	}
	ss->power_on_before = on;
	ss->power_cycles = cycles;
	ss->unsafe_shutdowns = unsafe + (running != 0);
	if (running)
		log_info("%s: the last run did not stop cleanly (unsafe "
		    "shutdown %" PRIu64 ")", ss->nqn, ss->unsafe_shutdowns);
}

static void
save_cb(evutil_socket_t fd, short what, void *arg)
{
	struct subsystem *ss;

	(void)fd;
	(void)what;
	(void)arg;
	if (running_config == NULL)
		return;
	TAILQ_FOREACH(ss, &running_config->subsystems, entry)
		health_save(ss, true);
}

/* The subsystem goes live: one more power cycle. */
void
health_attach(struct subsystem *ss, const char *state_dir)
{
	struct timeval tv = { HEALTH_SAVE_SECS, 0 };

	ss->power_cycles = 0;
	if (state_dir != NULL && mkdir(state_dir, 0700) == -1 &&
	    errno != EEXIST)
		log_warn("health counters: %s", state_dir);
	else if (state_dir != NULL && ss->health_path == NULL &&
	    (ss->health_path = health_path(state_dir, ss->nqn)) != NULL)
		health_load(ss);
	ss->power_cycles++;
	health_save(ss, true);
	if (state_dir != NULL && save_ev == NULL && main_loop != NULL &&
	    (save_ev = event_new(main_loop->base, -1, EV_PERSIST, save_cb,
	    NULL)) != NULL)
		event_add(save_ev, &tv);
}

/* A clean stop, or the subsystem is deleted. */
void
health_detach(struct subsystem *ss)
{
	health_save(ss, false);
	free(ss->health_path);
	ss->health_path = NULL;
}

/*
 * Busy time.  A queue enters when its first command arrives and leaves when
 * its last completes; the controller is busy while any queue is, the
 * subsystem while any controller is.  The spell's start is read before the
 * count drops: while this queue is in, no other can start a new spell.
 * The clock is read, not the loop turn's time: a RAM command is often
 * received and answered within one turn.
 */
static bool
busy_enter(struct busy_clock *b, uint64_t now)
{
	if (atomic_fetch_add(&b->nbusy, 1) != 0)
		return (false);
	atomic_store(&b->since_ns, now);
	return (true);
}

static bool
busy_leave(struct busy_clock *b, uint64_t now)
{
	uint64_t since = atomic_load(&b->since_ns);

	if (atomic_fetch_sub(&b->nbusy, 1) != 1)
		return (false);
	if (now > since)
		atomic_fetch_add(&b->total_ns, now - since);
	return (true);
}

void
health_busy_enter(struct controller *ctrl, uint64_t now)
{
	if (busy_enter(&ctrl->busy, now) && ctrl->subsys != NULL)
		busy_enter(&ctrl->subsys->busy, now);
}

void
health_busy_leave(struct controller *ctrl, uint64_t now)
{
	if (busy_leave(&ctrl->busy, now) && ctrl->subsys != NULL)
		busy_leave(&ctrl->subsys->busy, now);
}

/* Busy time so far, the current spell included. */
uint64_t
health_busy_ns(struct busy_clock *b, uint64_t now)
{
	uint64_t total = atomic_load(&b->total_ns);
	uint64_t since = atomic_load(&b->since_ns);

	if (atomic_load(&b->nbusy) > 0 && since != 0 && now > since)
		total += now - since;
	return (total);
}

/* Add one queue's counters, read as its loop may be writing them. */
void
health_stats_add(struct qpair_stats *to, struct qpair_stats *from)
{
	to->cmds += STAT_GET(from->cmds);
	to->errors += STAT_GET(from->errors);
	to->bytes_read += STAT_GET(from->bytes_read);
	to->bytes_written += STAT_GET(from->bytes_written);
	to->reads += STAT_GET(from->reads);
	to->writes += STAT_GET(from->writes);
	to->data_read += STAT_GET(from->data_read);
	to->data_written += STAT_GET(from->data_written);
}

/* A controller's I/O counters: its queues gone and live (main loop). */
void
health_ctrl_stats(struct controller *ctrl, struct qpair_stats *st)
{
	*st = ctrl->gone_stats;
	for (uint16_t q = 1; ctrl->ioq != NULL && q <= ctrl->max_qid; q++)
		if (ctrl->ioq[q] != NULL)
			health_stats_add(st, &ctrl->ioq[q]->stats);
}
