/*
 * The running configuration and its live changes: subsystems, namespaces,
 * ports and hosts come and go from the main loop while workers serve I/O.
 *
 * Workers find namespaces through each subsystem's NSID table with one
 * atomic load and count the commands they have in flight per namespace in
 * a counter only they write, so the data path takes no lock and shares no
 * written cache line.  Removing a namespace clears its table slot, then
 * waits for one turn of every loop (after which nobody can still be about to
 * take it) and for the in-flight counts to drain, then closes it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "nvmfd.h"

struct config *running_config;

struct retire {
	struct namespace *ns;
	atomic_int	pending;	/* loops that have not yet run a turn */
	struct event	timer;
};

static int
loop_slot(void)
{
	return (cur_loop ? cur_loop->index + 1 : 0);
}

static int
nloops(void)
{
	return (loops_count() + 1);
}

/*
 * This loop's in-flight count of ns in epoch half e, plus d.  Single
 * writer: a plain load and store, no locked instruction.  Namespaces opened
 * outside the registry (unit tests) are not counted.
 */
static void
ns_inflight_add(struct namespace *ns, unsigned e, unsigned d)
{
	atomic_uint *n;

	if (ns->inflight == NULL)
		return;
	n = &ns->inflight[loop_slot()].n[e];
	atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + d,
	    memory_order_release);
}

unsigned
ns_hold(struct namespace *ns)
{
	unsigned e = atomic_load_explicit(&ns->epoch, memory_order_acquire) & 1;

	ns_inflight_add(ns, e, 1);
	return (e);
}

void
ns_release(struct namespace *ns, unsigned e)
{
	ns_inflight_add(ns, e, -1u);
}

/* Out of the epoch count and back in, on the command's own loop: for a
 * command that waits for a drain, which must not wait for it. */
void
ns_set_aside(struct nvmf_cmd *cmd)
{
	atomic_fetch_add(&cmd->ns->held_back, 1);
	ns_release(cmd->ns, cmd->ns_epoch);
}

void
ns_take_back(struct nvmf_cmd *cmd)
{
	cmd->ns_epoch = ns_hold(cmd->ns);
	atomic_fetch_sub(&cmd->ns->held_back, 1);
}

static void
ns_unpark_msg(void *arg)
{
	struct nvmf_cmd *cmd = arg;
	bool always = cmd->park_always;

	cmd->park_always = false;
	ns_take_back(cmd);
	if (cmd->qp->state == QP_DEAD && !always)
		/* No host to run it for (nor data to come for it). */
		cmd_complete_status(cmd, NVME_SC_ABORT_SQ_DELETED);
	else
		cmd->parked_then(cmd);
	loop_finish_turn(cur_loop);
}

void
ns_park(struct nvmf_cmd *cmd, void (*then)(struct nvmf_cmd *))
{
	cmd->parked_then = then;
	ns_set_aside(cmd);
}

void
ns_unpark(struct nvmf_cmd *cmd)
{
	loop_post(cmd->qp->owner, ns_unpark_msg, cmd);
}

unsigned
ns_epoch_next(struct namespace *ns)
{
	return (atomic_fetch_add(&ns->epoch, 1) & 1);
}

unsigned
ns_epoch_count(struct namespace *ns, unsigned e)
{
	unsigned sum = 0;

	if (ns->inflight == NULL)
		return (0);
	for (int i = 0; i < nloops(); i++)
		sum += atomic_load_explicit(&ns->inflight[i].n[e],
		    memory_order_acquire);
	return (sum);
}

/* Per-loop statistics, summed when read (cmd-*.c). */
void
ns_account(struct namespace *ns, uint8_t opc, uint64_t bytes, uint16_t status,
    uint64_t lat_ns)
{
	struct ns_stats *st;
	uint64_t us = lat_ns / 1000;
	int b = us ? 64 - __builtin_clzll(us) : 0;

	if (ns->stats == NULL)
		return;
	st = &ns->stats[loop_slot()];
	if (status != 0)
		STAT_ADD(st->errors, 1);
	if (((status >> 8) & 7) == 2)
		STAT_ADD(st->media_errors, 1);
	if (opc == NVME_CMD_READ) {
		STAT_ADD(st->reads, 1);
		STAT_ADD(st->bytes_read, status ? 0 : bytes);
	} else if (opc == NVME_CMD_WRITE) {
		STAT_ADD(st->writes, 1);
		STAT_ADD(st->bytes_written, status ? 0 : bytes);
	} else
		STAT_ADD(st->other, 1);
	STAT_ADD(st->lat_sum_ns, lat_ns);
	STAT_ADD(st->lat[MINIMUM(b, NS_LAT_BUCKETS - 1)], 1);
}

/* Error completions by status code type and code (11 bits), per loop. */
static uint64_t (*status_errs)[METRICS_STATUSES];

void
status_account(uint16_t status)
{
	if (status_errs != NULL)
		STAT_ADD(status_errs[loop_slot()][status & 0x7ff], 1);
}

void
status_counts(uint64_t out[METRICS_STATUSES])
{
	memset(out, 0, sizeof(uint64_t) * METRICS_STATUSES);
	for (int l = 0; status_errs != NULL && l < nloops(); l++)
		for (int i = 0; i < METRICS_STATUSES; i++)
			out[i] += STAT_GET(status_errs[l][i]);
}

/* Every loop's counters of ns added up, read without stopping the loops. */
void
ns_stats_sum(struct namespace *ns, struct ns_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (int l = 0; ns->stats != NULL && l < nloops(); l++) {
		const struct ns_stats *st = &ns->stats[l];

		sum->reads += STAT_GET(st->reads);
		sum->writes += STAT_GET(st->writes);
		sum->other += STAT_GET(st->other);
		sum->errors += STAT_GET(st->errors);
		sum->media_errors += STAT_GET(st->media_errors);
		sum->bytes_read += STAT_GET(st->bytes_read);
		sum->bytes_written += STAT_GET(st->bytes_written);
		sum->lat_sum_ns += STAT_GET(st->lat_sum_ns);
		for (int i = 0; i < NS_LAT_BUCKETS; i++)
			sum->lat[i] += STAT_GET(st->lat[i]);
	}
}

static bool
ns_idle(struct namespace *ns)
{
	return (ns_epoch_count(ns, 0) + ns_epoch_count(ns, 1) +
	    atomic_load(&ns->held_back) == 0);
}

/* Close and free a namespace nobody can reach any more. */
void
namespace_free(struct namespace *ns)
{
	namespace_close(ns);
	resv_detach(ns);
	fused_detach(ns);
	atomic_detach(ns);
	free(ns->inflight);
	free(ns->stats);
	free(ns->retire);
	free(ns->path);
	rbd_spec_free(ns->rbd);
	free(ns);
}

static void
retire_poll(evutil_socket_t fd, short what, void *arg)
{
	struct retire *r = arg;
	struct timeval tv = { 0, 10 * 1000 };

	if (atomic_load(&r->pending) > 0 || !ns_idle(r->ns)) {
		evtimer_add(&r->timer, &tv);
		return;
	}
	log_debug("namespace %u: retired", r->ns->nsid);
	namespace_free(r->ns);		/* r with it */
}

static void
retire_turn_msg(void *arg)
{
	struct retire *r = arg;

	atomic_fetch_sub(&r->pending, 1);
}

/* Make a namespace (backend already configured, not yet open) visible. */
int
ns_publish(struct subsystem *ss, struct namespace *ns, char *err, size_t errlen)
{
	struct namespace *o;

	if (ns->nsid == 0 || ns->nsid > NVMFD_MAX_NSID) {
		snprintf(err, errlen, "NSID %u out of range 1..%u", ns->nsid,
		    NVMFD_MAX_NSID);
		return (-1);
	}
	if (ss->ns_table != NULL && atomic_load(&ss->ns_table[ns->nsid]) != NULL) {
		snprintf(err, errlen, "NSID %u exists", ns->nsid);
		return (-1);
	}
	if (ns->inflight == NULL &&
	    (ns->inflight = calloc(nloops(), sizeof(*ns->inflight))) == NULL)
		goto nomem;
	if (ns->stats == NULL &&
	    (ns->stats = calloc(nloops(), sizeof(*ns->stats))) == NULL)
		goto nomem;
	if (ns->retire == NULL &&
	    (ns->retire = calloc(1, sizeof(*ns->retire))) == NULL)
		goto nomem;
	/* Before opening: the backend may name its subsystem (a RAM
	 * namespace's populate thread), and the one it was parsed with may
	 * be gone (nvmfctl add-ns parses a snippet and frees it). */
	ns->subsys = ss;
	if (ns->ops == NULL && namespace_open(ns, err, errlen) != 0)
		return (-1);
	if (resv_attach(ns, running_config ? running_config->state_dir : NULL,
	    err, errlen) != 0)
		return (-1);
	if (fused_attach(ns) != 0 || atomic_attach(ns) != 0)
		goto nomem;
	/* Made without the config loader (tests): the default group. */
	if (ns->anagrpid == 0)
		ns->anagrpid = ANA_DEFAULT_GROUP;
	if (!ns->published) {
		/* Keep the main loop's list sorted by NSID. */
		TAILQ_FOREACH(o, &ss->namespaces, entry)
			if (o == ns)
				break;
		if (o == NULL) {
			TAILQ_FOREACH(o, &ss->namespaces, entry)
				if (o->nsid > ns->nsid)
					break;
			if (o)
				TAILQ_INSERT_BEFORE(o, ns, entry);
			else
				TAILQ_INSERT_TAIL(&ss->namespaces, ns, entry);
		}
	}
	ns->published = true;
	if (ss->ns_table != NULL)
		atomic_store_explicit(&ss->ns_table[ns->nsid], ns,
		    memory_order_release);
	log_info("%s namespace %u: %s%s%s, %llu blocks of %u bytes%s", ss->nqn,
	    ns->nsid, ns->ops->name, ns->path ? " " : "",
	    ns->path ? ns->path : "", (unsigned long long)ns->nlb,
	    1u << ns->lba_shift, ns->readonly ? ", read-only" : "");
	return (0);
nomem:
	snprintf(err, errlen, "out of memory");
	return (-1);
}

/* Take a namespace away; it is closed and freed once nothing uses it. */
void
ns_unpublish(struct namespace *ns)
{
	struct subsystem *ss = ns->subsys;
	struct retire *r;
	struct timeval tv = { 0, 0 };

	if (ss->ns_table != NULL)
		atomic_store_explicit(&ss->ns_table[ns->nsid], NULL,
		    memory_order_release);
	TAILQ_REMOVE(&ss->namespaces, ns, entry);
	ns->published = false;
	r = ns->retire;
	r->ns = ns;
	atomic_init(&r->pending, loops_count());
	for (int i = 0; i < loops_count(); i++)
		loop_post(loop_worker(i), retire_turn_msg, r);
	evtimer_assign(&r->timer, main_loop->base, retire_poll, r);
	evtimer_add(&r->timer, &tv);
}

/* Write protection can change live; the backend may need write access. */
int
ns_set_readonly(struct namespace *ns, bool ro, char *err, size_t errlen)
{
	if (ns->readonly == ro)
		return (0);
	if (!ro && ns->ops->set_writable != NULL &&
	    ns->ops->set_writable(ns, err, errlen) != 0)
		return (-1);
	ns->readonly = ro;
	ctrl_notify_ns_changed(ns->subsys, ns->nsid);
	return (0);
}

/* ------------------------------------------------------------ subsystems */

int
subsystem_publish(struct config *cf, struct subsystem *ss, char *err,
    size_t errlen)
{
	struct namespace *ns, *next;

	if (ss->created == 0) {
		ss->created = (uint64_t)time(NULL);
		health_attach(ss, cf->state_dir);
	}
	if ((ss->ns_table = calloc(NVMFD_MAX_NSID + 1,
	    sizeof(*ss->ns_table))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	TAILQ_FOREACH_SAFE(ns, &ss->namespaces, entry, next) {
		char nerr[256];

		if (ns_publish(ss, ns, nerr, sizeof(nerr)) != 0) {
			snprintf(err, errlen, "%s namespace %u: %s", ss->nqn,
			    ns->nsid, nerr);
			return (-1);
		}
	}
	if (subsystem_find(cf, ss->nqn) != ss &&
	    subsystem_link(cf, ss) == -1) {
		snprintf(err, errlen, "%s: out of memory", ss->nqn);
		return (-1);
	}
	return (0);
}

/* Its namespaces already left in subsystem_unpublish(). */
static void
subsystem_free(struct subsystem *ss)
{
	host_list_free(&ss->hosts);
	free(ss->ns_table);
	free(ss->port_ids);
	free(ss->health_path);
	free(ss);
}

/* Remove a subsystem: its controllers go first, then the rest of it. */
void
subsystem_unpublish(struct config *cf, struct subsystem *ss)
{
	struct controller *ctrl, *next;
	struct namespace *ns;

	subsystem_unlink(cf, ss);
	ss->removed = true;
	health_detach(ss);
	/* Namespaces leave now: workers stop finding them at once. */
	while ((ns = TAILQ_FIRST(&ss->namespaces)) != NULL)
		ns_unpublish(ns);
	TAILQ_FOREACH_SAFE(ctrl, &ss->controllers, entry, next)
		ctrl_destroy(ctrl, "subsystem removed");
	subsystem_maybe_free(ss);
}

/* Called when a controller goes: a removed subsystem may now be freed. */
void
subsystem_maybe_free(struct subsystem *ss)
{
	if (ss->removed && TAILQ_EMPTY(&ss->controllers))
		subsystem_free(ss);
}

/* A host lost access: its controllers on that subsystem are torn down. */
void
host_revoke(struct subsystem *ss, const char *hostnqn)
{
	struct controller *ctrl, *next;

	TAILQ_FOREACH_SAFE(ctrl, &ss->controllers, entry, next)
		if (!subsystem_host_allowed(ss, ctrl->hostnqn, ctrl->admin ?
		    (struct sockaddr *)&ctrl->admin->peer_sa : NULL) &&
		    (hostnqn == NULL || strcmp(ctrl->hostnqn, hostnqn) == 0))
			ctrl_destroy(ctrl, "host no longer allowed");
}

/* ----------------------------------------------------------------- ports */

void
port_ref(struct port *port)
{
	atomic_fetch_add(&port->refs, 1);
}

void
port_unref(struct port *port)
{
	if (atomic_fetch_sub(&port->refs, 1) == 1)
		free(port);
}

int
port_publish(struct config *cf, struct port *port, char *err, size_t errlen)
{
	atomic_init(&port->refs, 1);
	if (listener_start(port) != 0) {
		snprintf(err, errlen, "cannot listen on %s port %s", port->address,
		    port->service);
		return (-1);
	}
	if (port_find(cf, port->id) != port)
		TAILQ_INSERT_TAIL(&cf->ports, port, entry);
	return (0);
}

/* Stop listening and tear down the associations made through the port. */
void
port_unpublish(struct config *cf, struct port *port)
{
	struct subsystem *ss;
	struct controller *ctrl, *next;

	TAILQ_REMOVE(&cf->ports, port, entry);
	port->removed = true;
	listener_stop(port);
	TAILQ_FOREACH(ss, &cf->subsystems, entry) {
		TAILQ_FOREACH_SAFE(ctrl, &ss->controllers, entry, next)
			if (ctrl->port == port)
				ctrl_destroy(ctrl, "port removed");
		ana_forget_port(&ss->ana, port->id);
	}
	TAILQ_FOREACH_SAFE(ctrl, &discovery_controllers, entry, next)
		if (ctrl->port == port)
			ctrl_destroy(ctrl, "port removed");
	qpairs_close_port(port);
	port_unref(port);
}

/* ------------------------------------------------------------ start, stop */

int
registry_start(struct config *cf)
{
	struct subsystem *ss;
	struct port *port;
	char err[512];

	if (status_errs == NULL &&
	    (status_errs = calloc(nloops(), sizeof(*status_errs))) == NULL) {
		log_warnx("out of memory");
		return (-1);
	}
	TAILQ_FOREACH(ss, &cf->subsystems, entry)
		if (subsystem_publish(cf, ss, err, sizeof(err)) != 0) {
			log_warnx("%s", err);
			return (-1);
		}
	TAILQ_FOREACH(port, &cf->ports, entry)
		if (port_publish(cf, port, err, sizeof(err)) != 0) {
			log_warnx("port %u: %s", port->id, err);
			return (-1);
		}
	return (0);
}

/* Final teardown after the loops stopped: nothing runs any more. */
void
registry_stop(struct config *cf)
{
	struct subsystem *ss;
	struct namespace *ns;

	TAILQ_FOREACH(ss, &cf->subsystems, entry) {
		TAILQ_FOREACH(ns, &ss->namespaces, entry)
			if (ns->ops != NULL)
				namespace_close(ns);
		health_detach(ss);
	}
	rbd_closes_wait();
}
