/*
 * Reload: apply a new configuration to the running one, changing only what
 * differs.  Associations to subsystems that did not change stay connected.
 *
 * Two phases, so that a file that cannot be applied changes nothing: first
 * every new namespace is opened and every new listener bound; only if all
 * of that worked are objects removed, added and changed.
 */
#include "config.h"

#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"

static bool
ns_same_storage(const struct namespace *a, const struct namespace *b)
{
	return (a->type == b->type && a->direct == b->direct &&
	    ((a->path == NULL && b->path == NULL) ||
	    (a->path && b->path && strcmp(a->path, b->path) == 0)) &&
	    rbd_spec_equal(a->rbd, b->rbd) &&
	    /* Sizes change in place (resize_kept). */
	    (b->block_size == 0 || (1u << a->lba_shift) == b->block_size) &&
	    !memcmp(a->uuid, b->uuid, 16) && !memcmp(a->nguid, b->nguid, 16) &&
	    !memcmp(a->eui64, b->eui64, 8));
}

static bool
port_same_socket(const struct port *a, const struct port *b)
{
	return (strcmp(a->address, b->address) == 0 &&
	    strcmp(a->service, b->service) == 0);
}

/* The running namespace that ns of next stays, or NULL: new or other
 * storage, to be opened. */
static struct namespace *
ns_kept(struct config *running, struct subsystem *nss, struct namespace *nns)
{
	struct subsystem *rss = subsystem_find(running, nss->nqn);
	struct namespace *rns = rss ? namespace_find(rss, nns->nsid) : NULL;

	return (rns != NULL && ns_same_storage(rns, nns) ? rns : NULL);
}

static int
prepare(struct config *running, struct config *next, char *err, size_t errlen)
{
	struct subsystem *ss;
	struct namespace *ns, *rns;
	struct port *p, *rp;

	TAILQ_FOREACH(ss, &next->subsystems, entry)
		TAILQ_FOREACH(ns, &ss->namespaces, entry) {
			char nerr[256];

			if ((rns = ns_kept(running, ss, ns)) != NULL) {
				/* Lifting write protection can fail: find out
				 * now.  The flag itself changes in apply. */
				if (rns->readonly && !ns->readonly &&
				    rns->ops->set_writable != NULL &&
				    rns->ops->set_writable(rns, nerr,
				    sizeof(nerr)) != 0) {
					snprintf(err, errlen, "%s namespace "
					    "%u: %s", ss->nqn, ns->nsid, nerr);
					return (-1);
				}
				continue;
			}
			/* Opened already when opening blocks (reload_start). */
			if (ns->ops == NULL &&
			    namespace_open(ns, nerr, sizeof(nerr)) != 0) {
				snprintf(err, errlen, "%s namespace %u: %s",
				    ss->nqn, ns->nsid, nerr);
				return (-1);
			}
		}
	TAILQ_FOREACH(p, &next->ports, entry) {
		rp = port_find(running, p->id);
		if (rp != NULL && port_same_socket(rp, p))
			continue;
		p->fd = -1;
		if (listener_start(p) != 0) {
			snprintf(err, errlen, "port %u: cannot listen on %s "
			    "port %s", p->id, p->address, p->service);
			return (-1);
		}
	}
	return (0);
}

/* Undo prepare() after a failure: close what it opened and bound. */
static void
unprepare(struct config *next)
{
	struct subsystem *ss;
	struct namespace *ns;
	struct port *p;

	TAILQ_FOREACH(ss, &next->subsystems, entry)
		TAILQ_FOREACH(ns, &ss->namespaces, entry)
			namespace_close(ns);
	TAILQ_FOREACH(p, &next->ports, entry)
		listener_stop(p);
}

static bool
secret_equal(const char *a, const char *b)
{
	return (a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0);
}

/* Keys too: a key file may have new contents under the same name. */
static bool
host_lists_equal(struct host_list *a, struct host_list *b)
{
	struct host *x, *y;

	for (x = TAILQ_FIRST(a), y = TAILQ_FIRST(b); x && y;
	    x = TAILQ_NEXT(x, entry), y = TAILQ_NEXT(y, entry))
		if (strcmp(x->nqn, y->nqn) ||
		    !secret_equal(x->dhchap_secret, y->dhchap_secret) ||
		    !secret_equal(x->dhchap_ctrl_secret,
		    y->dhchap_ctrl_secret) ||
		    memcmp(&x->key, &y->key, sizeof(x->key)) ||
		    memcmp(&x->ctrl_key, &y->ctrl_key, sizeof(x->ctrl_key)) ||
		    !host_tls_equal(x->tls, y->tls) || x->nfrom != y->nfrom ||
		    (x->nfrom && memcmp(x->from, y->from,
		    x->nfrom * sizeof(*x->from))))
			return (false);
	return (x == NULL && y == NULL);
}

static bool
hosts_equal(struct subsystem *a, struct subsystem *b)
{
	return (a->allow_any_host == b->allow_any_host &&
	    host_lists_equal(&a->hosts, &b->hosts));
}

/* Swap two host lists; the old one is then freed with the new config. */
static void
host_lists_swap(struct host_list *a, struct host_list *b)
{
	struct host_list tmp = TAILQ_HEAD_INITIALIZER(tmp);

	TAILQ_CONCAT(&tmp, a, entry);
	TAILQ_CONCAT(a, b, entry);
	TAILQ_CONCAT(b, &tmp, entry);
}

static bool
referrals_equal(struct config *a, struct config *b)
{
	struct referral *x, *y;

	for (x = TAILQ_FIRST(&a->referrals), y = TAILQ_FIRST(&b->referrals);
	    x && y; x = TAILQ_NEXT(x, entry), y = TAILQ_NEXT(y, entry))
		if (strcmp(x->address, y->address) ||
		    strcmp(x->service, y->service) || x->port_id != y->port_id)
			return (false);
	return (x == NULL && y == NULL);
}

static bool
ports_equal(struct subsystem *a, struct subsystem *b)
{
	if ((a->port_ids == NULL) != (b->port_ids == NULL) ||
	    a->nport_ids != b->nport_ids)
		return (false);
	return (a->port_ids == NULL ||
	    !memcmp(a->port_ids, b->port_ids, a->nport_ids * sizeof(uint16_t)));
}

/*
 * A kept namespace takes its new size in place: a RAM namespace the
 * configured one; a file the length it has now (someone may have grown
 * it), or the configured one if that is more (the file's size in the
 * configuration is a minimum it is grown to); a block device its own.
 */
static void
resize_kept(struct subsystem *rss, struct namespace *old,
    struct namespace *nn)
{
	bool changed;
	char err[256];
	int rc = 0;

	if (old->type != BACKEND_RAM)
		rc = ns_rescan(old, &changed, err, sizeof(err));
	if (rc == 0 && old->type == BACKEND_RAM &&
	    (nn->size >> old->lba_shift) != old->nlb)
		rc = ns_resize(old, nn->size, err, sizeof(err));
	else if (rc == 0 && old->type == BACKEND_FILE && !old->readonly &&
	    nn->size > old->nlb << old->lba_shift)
		rc = ns_resize(old, nn->size, err, sizeof(err));
	if (rc != 0)
		log_warnx("%s namespace %u: %s", rss->nqn, old->nsid, err);
}

/* Bring one running subsystem in line with its new description. */
static bool
apply_subsystem(struct subsystem *rss, struct subsystem *nss)
{
	struct namespace *ns, *next, *old;
	struct controller *c, *cn;
	bool visible = false, ana_differs;
	char err[256];

	memcpy(rss->serial, nss->serial, sizeof(rss->serial));
	memcpy(rss->model, nss->model, sizeof(rss->model));
	rss->max_io_queues = nss->max_io_queues;
	rss->dhchap = nss->dhchap;
	rss->cntlid_min = nss->cntlid_min;
	rss->cntlid_max = nss->cntlid_max;
	ana_differs = ana_copy(&rss->ana, &nss->ana);
	if (!hosts_equal(rss, nss)) {
		host_lists_swap(&rss->hosts, &nss->hosts);
		rss->allow_any_host = nss->allow_any_host;
		host_revoke(rss, NULL);
		visible = true;
	}
	/* New keys and offers serve the next authentication; nothing drops. */
	auth_subsys_refresh(rss);
	if (!ports_equal(rss, nss)) {
		uint16_t *ids = rss->port_ids;
		size_t n = rss->nport_ids;

		rss->port_ids = nss->port_ids;
		rss->nport_ids = nss->nport_ids;
		nss->port_ids = ids;
		nss->nport_ids = n;
		TAILQ_FOREACH_SAFE(c, &rss->controllers, entry, cn)
			if (!subsystem_on_port(rss, c->port))
				ctrl_destroy(c, "port no longer serves the "
				    "subsystem");
		visible = true;
	}
	/* Namespaces gone or with other storage leave first. */
	TAILQ_FOREACH_SAFE(ns, &rss->namespaces, entry, next) {
		struct namespace *nn = namespace_find(nss, ns->nsid);
		uint32_t nsid = ns->nsid;

		if (nn != NULL && ns_same_storage(ns, nn))
			continue;
		ns_unpublish(ns);
		if (nn == NULL)
			ctrl_notify_ns_changed(rss, nsid);
	}
	TAILQ_FOREACH_SAFE(ns, &nss->namespaces, entry, next) {
		if ((old = namespace_find(rss, ns->nsid)) != NULL) {
			if (old->anagrpid != ns->anagrpid) {
				atomic_store(&old->anagrpid, ns->anagrpid);
				ctrl_notify_ns_changed(rss, ns->nsid);
				ana_differs = true;
			}
			if (old->readonly != ns->readonly &&
			    ns_set_readonly(old, ns->readonly, err,
			    sizeof(err)) != 0)
				log_warnx("%s namespace %u: %s", rss->nqn,
				    old->nsid, err);
			resize_kept(rss, old, ns);
			continue;
		}
		TAILQ_REMOVE(&nss->namespaces, ns, entry);
		if (ns_publish(rss, ns, err, sizeof(err)) != 0) {
			log_warnx("%s namespace %u: %s", rss->nqn, ns->nsid, err);
			namespace_free(ns);
			continue;
		}
		ctrl_notify_ns_changed(rss, ns->nsid);
	}
	if (ana_differs)
		ana_changed(rss, -1);
	return (visible);
}

/* The discovery section: hosts no longer allowed lose their discovery
 * controllers; new keys serve the next authentication. */
static void
apply_discovery(struct config *running, struct config *next)
{
	struct discovery_access *r = &running->discovery, *n = &next->discovery;

	r->dhchap = n->dhchap;
	if (r->allow_any_host != n->allow_any_host ||
	    !host_lists_equal(&r->hosts, &n->hosts)) {
		host_lists_swap(&r->hosts, &n->hosts);
		r->allow_any_host = n->allow_any_host;
		discovery_revoke(NULL);
	}
	discovery_auth_refresh();
}

static void
move_port(struct config *running, struct config *next, struct port *p,
    struct port *before)
{
	TAILQ_REMOVE(&next->ports, p, entry);
	atomic_init(&p->refs, 1);
	if (before)
		TAILQ_INSERT_BEFORE(before, p, entry);
	else
		TAILQ_INSERT_TAIL(&running->ports, p, entry);
}

int
config_apply(struct config *running, struct config *next, char *err,
    size_t errlen)
{
	struct subsystem *rss, *nss, *sn;
	struct port *rp, *np, *pn;
	struct referral *r;
	bool visible = false;

	if (prepare(running, next, err, errlen) != 0) {
		unprepare(next);
		return (-1);
	}
	if (next->workers != running->workers || next->mdts != running->mdts ||
	    next->poll_us != running->poll_us ||
	    next->metrics_port != running->metrics_port ||
	    strcmp(next->metrics_address, running->metrics_address) != 0)
		log_warnx("reload: workers, poll_us, mdts and metrics change "
		    "only at restart");
	if ((next->state_dir == NULL) != (running->state_dir == NULL) ||
	    (next->state_dir && strcmp(next->state_dir, running->state_dir)))
		log_warnx("reload: state_dir changes only at restart");
	running->max_controllers = next->max_controllers;
	running->max_disc_controllers = next->max_disc_controllers;
	running->max_connections = next->max_connections;

	/* Ports: remove, replace (new socket already bound), update, add. */
	TAILQ_FOREACH_SAFE(rp, &running->ports, entry, pn) {
		np = port_find(next, rp->id);
		if (np != NULL && port_same_socket(rp, np)) {
			rp->inline_data_size = np->inline_data_size;
			rp->maxh2cdata = np->maxh2cdata;
			rp->max_queue_depth = np->max_queue_depth;
			rp->header_digest = np->header_digest;
			rp->data_digest = np->data_digest;
			rp->dhchap = np->dhchap;
			rp->tls = np->tls;
			continue;
		}
		if (np != NULL)
			move_port(running, next, np, rp);
		port_unpublish(running, rp);
		visible = true;
	}
	TAILQ_FOREACH_SAFE(np, &next->ports, entry, pn) {
		if (port_find(running, np->id) != NULL)
			continue;
		move_port(running, next, np, NULL);
		visible = true;
	}

	/* Subsystems by NQN. */
	TAILQ_FOREACH_SAFE(rss, &running->subsystems, entry, sn)
		if (subsystem_find(next, rss->nqn) == NULL) {
			subsystem_unpublish(running, rss);
			visible = true;
		}
	TAILQ_FOREACH_SAFE(nss, &next->subsystems, entry, sn) {
		if ((rss = subsystem_find(running, nss->nqn)) != NULL) {
			visible |= apply_subsystem(rss, nss);
			continue;
		}
		subsystem_unlink(next, nss);
		if (subsystem_publish(running, nss, err, errlen) != 0)
			log_warnx("reload: %s", err);	/* prepared: unlikely */
		visible = true;
	}

	apply_discovery(running, next);

	/* Referrals: take the new list as it is. */
	if (!referrals_equal(running, next)) {
		while ((r = TAILQ_FIRST(&running->referrals)) != NULL) {
			TAILQ_REMOVE(&running->referrals, r, entry);
			free(r);
		}
		TAILQ_CONCAT(&running->referrals, &next->referrals, entry);
		visible = true;
	}
	if (next->path) {
		free(running->path);
		running->path = next->path;
		next->path = NULL;
	}
	if (visible)
		discovery_changed();
	return (0);
}

/*
 * A reload whose new namespaces include some that open off the loop (RBD):
 * they open on pool threads first; the rest of the reload (prepare, apply)
 * runs once the last has opened, or not at all when one failed.
 */
struct reload_job {
	struct config	*next;
	int		pending;	/* opens still running */
	bool		failed;
	char		err[512];
	void		(*done)(int, const char *, void *);
	void		*arg;
};

static bool reload_busy;

static int
reload_finish(struct config *next, bool failed, char *err, size_t errlen)
{
	int rc = -1;

	if (!failed)
		rc = config_apply(running_config, next, err, errlen);
	config_free(next);	/* closes what was opened and not taken */
	if (rc == 0)
		log_info("reloaded %s", running_config->path);
	else
		log_warnx("reload failed, nothing changed: %s", err);
	service_notify("READY=1");
	reload_busy = false;
	return (rc);
}

static void
reload_opened(struct namespace *ns, const char *err, void *arg)
{
	struct reload_job *j = arg;
	char buf[1024];
	int rc;

	if (err != NULL && !j->failed) {
		j->failed = true;
		snprintf(j->err, sizeof(j->err), "%s namespace %u: %s",
		    ns->subsys->nqn, ns->nsid, err);
	}
	if (--j->pending > 0)
		return;
	snprintf(buf, sizeof(buf), "%s", j->err);
	rc = reload_finish(j->next, j->failed, buf, sizeof(buf));
	if (j->done != NULL)
		j->done(rc, buf, j->arg);
	free(j);
}

/* Start opening next's new namespaces that would block; how many. */
static int
reload_start(struct reload_job *j)
{
	struct subsystem *ss;
	struct namespace *ns;

	TAILQ_FOREACH(ss, &j->next->subsystems, entry)
		TAILQ_FOREACH(ns, &ss->namespaces, entry) {
			if (!namespace_open_blocks(ns) ||
			    ns_kept(running_config, ss, ns) != NULL)
				continue;
			if (namespace_open_async(ns, reload_opened, j) != 0) {
				j->failed = true;
				snprintf(j->err, sizeof(j->err), "out of memory");
				return (j->pending);
			}
			j->pending++;
		}
	return (j->pending);
}

/* Load the configuration file again and apply it (SIGHUP, nvmfctl). */
int
config_reload(char *err, size_t errlen,
    void (*done)(int, const char *, void *), void *arg)
{
	struct reload_job *j;
	struct config *next;

	if (running_config->path == NULL) {
		snprintf(err, errlen, "running on the built-in default "
		    "configuration: there is no file to reload");
		log_warnx("reload: %s", err);
		return (-1);
	}
	if (reload_busy) {
		snprintf(err, errlen, "a reload is in progress");
		log_warnx("reload: %s", err);
		return (-1);
	}
	reload_busy = true;
	service_notify("RELOADING=1");
	if ((next = config_load(running_config->path, err, errlen)) == NULL)
		return (reload_finish(NULL, true, err, errlen));
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (reload_finish(next, true, err, errlen));
	}
	j->next = next;
	j->done = done;
	j->arg = arg;
	if (reload_start(j) > 0)
		return (1);
	snprintf(err, errlen, "%s", j->err);
	free(j);
	return (reload_finish(next, err[0] != '\0', err, errlen));
}
