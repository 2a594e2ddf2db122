/*
 * Persistent discovery: an association to a discovery controller (the
 * discovery NQN, from connect-all --persistent or a connect of that NQN)
 * connects to every NVM subsystem its log and the referrals list, when it
 * comes up and each time the controller reports the log changed, with the
 * discovery association's own options.  What left the log stays
 * connected, as with nvme-cli: its association reconnects or fails by its
 * own ctrl-loss-tmo.
 *
 * Reading logs means connecting to other controllers and waiting on them,
 * so it runs on a thread of its own (host_discover_all, the code nvmfctl
 * uses); the associations are made back on the main loop.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"
#include "host.h"

struct follow_job {
	struct host_assoc *a;		/* NULL once it is gone */
	int		id;		/* a's, for the log */
	struct host_params p;
	struct nvmf_disc_log_entry *e;
	uint64_t	n;
	int		rc;
	char		err[256];
};

static void follow_done(void *);

static void
warn_log(const char *msg, void *arg)
{
	const struct follow_job *j = arg;

	log_warnx("host %d: discovery: %s", j->id, msg);
}

static void *
follow_thread(void *arg)
{
	struct follow_job *j = arg;

	j->rc = host_discover_all(&j->p, &j->e, &j->n, warn_log, j, j->err,
	    sizeof(j->err));
	host_params_clear(&j->p);
	loop_post(main_loop, follow_done, j);
	return (NULL);
}

static bool
associated(const struct host_params *p)
{
	struct host_assoc *a;

	TAILQ_FOREACH(a, &host_assocs, entry)
		if (a->state != AS_DELETING &&
		    strcmp(a->p.subnqn, p->subnqn) == 0 &&
		    strcmp(a->p.traddr, p->traddr) == 0 &&
		    strcmp(a->p.trsvcid, p->trsvcid) == 0)
			return (true);
	return (false);
}

/* Back on the main loop: connect to what is new. */
static void
follow_done(void *arg)
{
	struct follow_job *j = arg;
	struct host_assoc *a = j->a, *n;
	int made = 0;

	if (a == NULL)
		goto out;
	a->follow = NULL;
	if (j->rc != 0) {
		log_warnx("host %d: discovery log at %s:%s: %s", a->id,
		    a->p.traddr, a->p.trsvcid, j->err);
		goto again;
	}
	for (uint64_t i = 0; i < j->n; i++) {
		struct host_params q = a->p;
		char addr[257], svc[33], nqn[257], err[256];

		host_disc_entry_fields(&j->e[i], addr, svc, nqn);
		/* Settings a hostile log could make too long are checked. */
		if (host_param_set(&q, "traddr", addr, err, sizeof(err)) != 0 ||
		    host_param_set(&q, "trsvcid", svc, err, sizeof(err)) != 0 ||
		    host_param_set(&q, "nqn", nqn, err, sizeof(err)) != 0) {
			log_warnx("host %d: discovery log entry %llu: %s",
			    a->id, (unsigned long long)i, err);
		} else if (associated(&q))
			;
		else if ((n = host_assoc_create(&q, err, sizeof(err))) ==
		    NULL)
			log_warnx("host %d: discovery: %s at %s:%s: %s", a->id,
			    q.subnqn, q.traddr, q.trsvcid, err);
		else {
			log_info("host %d: discovery: connecting to %s at "
			    "%s:%s (host %d)", a->id, q.subnqn, q.traddr,
			    q.trsvcid, n->id);
			made++;
		}
		host_params_clear(&q);
	}
	log_info("host %d: discovery log at %s:%s: %llu subsystem%s, %d new",
	    a->id, a->p.traddr, a->p.trsvcid, (unsigned long long)j->n,
	    j->n == 1 ? "" : "s", made);
again:
	if (a->follow_again) {
		a->follow_again = false;
		host_follow_start(a);
	}
out:
	free(j->e);
	free(j);
}

void
host_follow_start(struct host_assoc *a)
{
	struct follow_job *j;
	pthread_attr_t attr;
	pthread_t tid;

	if (a->follow != NULL) {
		a->follow_again = true;
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_warnx("host %d: discovery: out of memory", a->id);
		return;
	}
	j->a = a;
	j->id = a->id;
	j->p = a->p;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, follow_thread, j) != 0) {
		log_warnx("host %d: discovery: cannot start a thread", a->id);
		free(j);
	} else
		a->follow = j;
	pthread_attr_destroy(&attr);
}

/* a goes: a job under way finishes without it. */
void
host_follow_cancel(struct host_assoc *a)
{
	if (a->follow != NULL) {
		a->follow->a = NULL;
		a->follow = NULL;
	}
	a->follow_again = false;
}
