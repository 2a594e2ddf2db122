/*
 * Ceph RBD namespaces (configure --with-rbd): an image in a RADOS pool,
 * through librbd's asynchronous calls.
 *
 * Completions reach the loops without any librbd thread touching them:
 * each image handle is told to signal an eventfd when one of its I/Os is
 * done (rbd_set_image_notification), the completion carries the nvmf_io as
 * its argument and no callback, and the loop drains them with
 * rbd_poll_io_events() when libevent says the eventfd is readable.
 *
 * One image handle per loop (the main loop and every worker).  An image's
 * eventfd cannot be detached before rbd_close, so a handle shared by the
 * loops would deliver every completion to one of them, which would then
 * have to post it to the submitting loop: a message (and its allocation) per
 * I/O and a second wake-up.  With a handle per loop, the loop that submits
 * is the one that completes, on the loop's own eventfd.  The handles share
 * one cluster connection (rados_t) and I/O context; librbd keeps no cache
 * (rbd_cache=false), so the handles, and other nvmfd nodes serving the same
 * image, see each other's writes as soon as they complete.
 *
 * nvmfd allocates nothing per I/O here; librbd does, inside
 * rbd_aio_create_completion() and the request it starts, which its C API
 * offers no way around.
 *
 * Several handles, here and on other nodes, write the image at once, so
 * the image must not have the exclusive-lock feature: with it, the handles
 * would take the lock from each other on every write, and a node that died
 * holding it would stall the next writer until Ceph broke the lock.  open()
 * refuses such an image and names the command that turns the feature off.
 *
 * Connecting and opening block (monitor and OSD round trips), so they never
 * run on a loop: before the loops start for the configuration file, on a
 * pool thread for nvmfctl add-ns and a reload (namespace_open_async);
 * client_mount_timeout bounds the wait.  Closing runs on a thread of its
 * own, as rbd_close waits for the cluster.
 */
#include "config.h"

#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

#include "nvmfd.h"

#define RBD_POLL_BATCH	32
#define RBD_MOUNT_TIMEOUT "10"	/* seconds to reach the monitors */

struct rbd_img {
	rbd_image_t	image;
	struct loop	*loop;		/* where its completions run */
	int		efd;
	struct event	ev;
	bool		ev_added;
};

struct rbd_ns {
	rados_t		cluster;
	rados_ioctx_t	ioctx;
	bool		have_cluster, have_ioctx;
	bool		watching;	/* header updates: a resize */
	uint64_t	watch;
	uint64_t	size_seen;	/* the image's, last asked (main loop) */
	char		nqn[NVMFD_NQN_MAX + 1];	/* whose namespace, for them */
	uint32_t	nsid;
	int		nimg;
	struct rbd_img	img[];		/* by loop: main, then workers */
};

/* Closes still running on their threads: rbd_closes_wait() waits. */
static pthread_mutex_t closes_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t closes_cv = PTHREAD_COND_INITIALIZER;
static int closes_running;

static struct loop *
slot_loop(int slot)
{
	return (slot == 0 ? main_loop : loop_worker(slot - 1));
}

/* The loop's eventfd is readable: finish what its image completed. */
static void
rbd_events(evutil_socket_t fd, short what, void *arg)
{
	struct rbd_img *img = arg;
	rbd_completion_t comps[RBD_POLL_BATCH];
	uint64_t v;
	int n;

	loop_tick(img->loop);
	/* Read first: a completion after the poll below signals again. */
	(void)read(fd, &v, sizeof(v));
	do {
		n = rbd_poll_io_events(img->image, comps, RBD_POLL_BATCH);
		for (int i = 0; i < n; i++) {
			struct nvmf_io *io = rbd_aio_get_arg(comps[i]);
			ssize_t r = rbd_aio_get_return_value(comps[i]);

			rbd_aio_release(comps[i]);
			io->done(io, r < 0 ? (int)r : 0);
		}
	} while (n == RBD_POLL_BATCH);
	/* Send the responses, submit what the completions started. */
	loop_finish_turn(img->loop);
}

static void
rbd_ns_free(struct rbd_ns *r)
{
	if (r->watching)
		rbd_update_unwatch(r->img[0].image, r->watch);
	for (int i = 0; i < r->nimg; i++) {
		struct rbd_img *img = &r->img[i];

		if (img->ev_added)
			event_del(&img->ev);
		if (img->image != NULL)
			rbd_close(img->image);
		/* Only after rbd_close: librbd may signal it until then. */
		if (img->efd != -1)
			close(img->efd);
	}
	if (r->have_ioctx)
		rados_ioctx_destroy(r->ioctx);
	if (r->have_cluster)
		rados_shutdown(r->cluster);
	free(r);
}

static void *
rbd_close_thread(void *arg)
{
	rbd_ns_free(arg);
	pthread_mutex_lock(&closes_mtx);
	if (--closes_running == 0)
		pthread_cond_broadcast(&closes_cv);
	pthread_mutex_unlock(&closes_mtx);
	return (NULL);
}

void
rbd_closes_wait(void)
{
	pthread_mutex_lock(&closes_mtx);
	while (closes_running > 0)
		pthread_cond_wait(&closes_cv, &closes_mtx);
	pthread_mutex_unlock(&closes_mtx);
}

static void
rbd_ns_close(struct namespace *ns)
{
	struct rbd_ns *r = ns->priv;
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (r == NULL)
		return;
	ns->priv = NULL;
	/* Nothing is in flight (the registry drained the namespace): the
	 * loops stop watching now, the cluster is left off them. */
	for (int i = 0; i < r->nimg; i++)
		if (r->img[i].ev_added) {
			event_del(&r->img[i].ev);
			r->img[i].ev_added = false;
		}
	pthread_mutex_lock(&closes_mtx);
	closes_running++;
	pthread_mutex_unlock(&closes_mtx);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, rbd_close_thread, r);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		log_warnx("rbd: no thread to close an image (%s): closing it "
		    "here", strerror(rc));
		rbd_close_thread(r);
	}
}

/* A readable "rbd feature disable" line for the features in the way. */
static void
lock_features(uint64_t f, char *buf, size_t len)
{
	static const struct { uint64_t bit; const char *name; } dep[] = {
		{ RBD_FEATURE_JOURNALING, "journaling" },
		{ RBD_FEATURE_FAST_DIFF, "fast-diff" },
		{ RBD_FEATURE_OBJECT_MAP, "object-map" },
		{ RBD_FEATURE_EXCLUSIVE_LOCK, "exclusive-lock" },
	};
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < nitems(dep) && off < len; i++)
		if (f & dep[i].bit)
			off += snprintf(buf + off, len - off, " %s",
			    dep[i].name);
}

static int
rbd_img_open(struct namespace *ns, struct rbd_ns *r, int slot,
    const char *name, char *err, size_t errlen)
{
	struct rbd_img *img = &r->img[slot];
	struct loop *l;
	int rc;

	rc = ns->readonly ?
	    rbd_open_read_only(r->ioctx, ns->rbd->image, &img->image, NULL) :
	    rbd_open(r->ioctx, ns->rbd->image, &img->image, NULL);
	if (rc < 0) {
		img->image = NULL;
		snprintf(err, errlen, "rbd %s: cannot open: %s", name,
		    strerror(-rc));
		return (-1);
	}
	if ((img->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		snprintf(err, errlen, "rbd %s: eventfd: %s", name,
		    strerror(errno));
		return (-1);
	}
	if ((rc = rbd_set_image_notification(img->image, img->efd,
	    EVENT_TYPE_EVENTFD)) < 0) {
		snprintf(err, errlen, "rbd %s: completion notification: %s",
		    name, strerror(-rc));
		return (-1);
	}
	/* Without loops (a configuration check) there is nothing to watch. */
	if ((l = slot_loop(slot)) == NULL)
		return (0);
	img->loop = l;
	if (event_assign(&img->ev, l->base, img->efd, EV_READ | EV_PERSIST,
	    rbd_events, img) == -1 || event_add(&img->ev, NULL) == -1) {
		snprintf(err, errlen, "rbd %s: cannot watch completions", name);
		return (-1);
	}
	img->ev_added = true;
	return (0);
}

/* The cluster: ceph.conf, then what the namespace overrides. */
static int
rbd_connect(struct namespace *ns, struct rbd_ns *r, char *err, size_t errlen)
{
	const struct rbd_spec *spec = ns->rbd;
	int rc;

	if ((rc = rados_create(&r->cluster, spec->user)) < 0) {
		snprintf(err, errlen, "rbd: rados_create: %s", strerror(-rc));
		return (-1);
	}
	r->have_cluster = true;	/* rados_shutdown frees it from here on */
	if ((rc = rados_conf_read_file(r->cluster, spec->conf)) < 0) {
		snprintf(err, errlen, "rbd: ceph_conf %s: %s",
		    spec->conf ? spec->conf : "(the default places)",
		    strerror(-rc));
		return (-1);
	}
	if (spec->keyring != NULL &&
	    (rc = rados_conf_set(r->cluster, "keyring", spec->keyring)) < 0) {
		snprintf(err, errlen, "rbd: keyring: %s", strerror(-rc));
		return (-1);
	}
	/* No client cache: another node reading the image after a write
	 * completed here sees it, and a completed write is on the OSDs. */
	if ((rc = rados_conf_set(r->cluster, "rbd_cache", "false")) < 0 ||
	    (rc = rados_conf_set(r->cluster, "client_mount_timeout",
	    RBD_MOUNT_TIMEOUT)) < 0 ||
	    /* Identify says deallocated blocks read as zeroes (DLFEAT):
	     * make it so for ranges smaller than an object too. */
	    (rc = rados_conf_set(r->cluster, "rbd_skip_partial_discard",
	    "false")) < 0) {
		snprintf(err, errlen, "rbd: configuration: %s", strerror(-rc));
		return (-1);
	}
	if ((rc = rados_connect(r->cluster)) < 0) {
		snprintf(err, errlen, "rbd: cannot connect to the cluster as "
		    "client.%s: %s", spec->user ? spec->user : "admin",
		    strerror(-rc));
		return (-1);
	}
	if ((rc = rados_ioctx_create(r->cluster, spec->pool, &r->ioctx)) < 0) {
		snprintf(err, errlen, "rbd: pool %s: %s", spec->pool,
		    strerror(-rc));
		return (-1);
	}
	r->have_ioctx = true;
	if (spec->nspace != NULL)
		rados_ioctx_set_namespace(r->ioctx, spec->nspace);
	return (0);
}

/*
 * Resize: librbd calls rbd_changed() on a thread of its own when the
 * image's header changes (rbd resize, among others).  It only posts the
 * namespace's name to the main loop; there the namespace is looked up
 * again (it may be gone), held against removal (ns_hold) while a pool
 * thread asks librbd for the size (which may wait for the cluster).  Back
 * on the main loop the size is kept as size_seen and ns_rescan() takes it
 * (ns-resize.c: a shrink waits for the commands in flight, hosts are
 * told).  probe_size answers with size_seen, so rescan-ns and reload never
 * wait for the cluster on the main loop; set-ns --size is refused (there
 * is no resize op): the image is resized with rbd resize.
 */
struct rbd_resize {
	struct nvmf_io	io;		/* first: the pool's handle on it */
	char		nqn[NVMFD_NQN_MAX + 1];
	uint32_t	nsid;
	unsigned	epoch;
	uint64_t	size;
};

static int
rbd_resize_query(struct nvmf_io *io)
{
	struct rbd_resize *z = (struct rbd_resize *)io;
	struct rbd_ns *r = io->ns->priv;

	return (rbd_get_size(r->img[0].image, &z->size));
}

static void
rbd_resize_done(struct nvmf_io *io, int err)
{
	struct rbd_resize *z = (struct rbd_resize *)io;
	struct namespace *ns = io->ns;
	struct rbd_ns *r = ns->priv;
	char why[256];
	bool changed;

	if (err != 0)
		log_warnx("%s namespace %u: rbd size: %s", z->nqn, z->nsid,
		    strerror(-err));
	else if (ns->published && r != NULL) {
		r->size_seen = z->size;
		if (ns_rescan(ns, &changed, why, sizeof(why)) != 0)
			log_warnx("%s namespace %u: the image's new size: %s "
			    "(nvmfctl rescan-ns takes it later)", z->nqn,
			    z->nsid, why);
	}
	ns_release(ns, z->epoch);
	free(z);
}

static void
rbd_resize_msg(void *arg)
{
	struct rbd_resize *z = arg;
	struct subsystem *ss = subsystem_find(running_config, z->nqn);
	struct namespace *ns = ss ? namespace_find(ss, z->nsid) : NULL;

	if (ns == NULL || ns->ops != &backend_rbd_ops || ns->priv == NULL) {
		free(z);
		return;
	}
	z->io.ns = ns;
	z->io.done = rbd_resize_done;
	z->epoch = ns_hold(ns);
	io_engine_call(main_loop->engine, &z->io, rbd_resize_query);
}

static void
rbd_changed(void *arg)
{
	struct rbd_ns *r = arg;
	struct rbd_resize *z;

	if (main_loop == NULL || (z = calloc(1, sizeof(*z))) == NULL)
		return;
	memcpy(z->nqn, r->nqn, sizeof(z->nqn));
	z->nsid = r->nsid;
	loop_post(main_loop, rbd_resize_msg, z);
}

static int
rbd_ns_open(struct namespace *ns, char *err, size_t errlen)
{
	struct rbd_ns *r;
	char name[800], feat[80];
	uint64_t size, features;
	uint32_t bs = ns->block_size ? ns->block_size : 512;
	int n = loops_count() + 1, rc;

	if (ns->rbd == NULL || ns->rbd->pool == NULL || ns->rbd->image == NULL) {
		snprintf(err, errlen, "rbd namespace needs a pool and an image");
		return (-1);
	}
	rbd_spec_format(ns->rbd, name, sizeof(name));
	if ((r = calloc(1, sizeof(*r) + n * sizeof(r->img[0]))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	for (int i = 0; i < n; i++)
		r->img[i].efd = -1;
	r->nimg = n;
	if (rbd_connect(ns, r, err, errlen) == -1)
		goto fail;
	for (int i = 0; i < n; i++)
		if (rbd_img_open(ns, r, i, name, err, errlen) == -1)
			goto fail;
	if ((rc = rbd_get_size(r->img[0].image, &size)) < 0 ||
	    (rc = rbd_get_features(r->img[0].image, &features)) < 0) {
		snprintf(err, errlen, "rbd %s: %s", name, strerror(-rc));
		goto fail;
	}
	if (!ns->readonly && (features & RBD_FEATURE_EXCLUSIVE_LOCK)) {
		lock_features(features, feat, sizeof(feat));
		snprintf(err, errlen, "rbd %s has the exclusive-lock feature, "
		    "which writers on several loops and nodes cannot share; "
		    "turn it off: rbd feature disable %s%s", name, name, feat);
		goto fail;
	}
	if (ns->subsys != NULL) {
		snprintf(r->nqn, sizeof(r->nqn), "%s", ns->subsys->nqn);
		r->nsid = ns->nsid;
		r->watching = rbd_update_watch(r->img[0].image, &r->watch,
		    rbd_changed, r) == 0;
	}
	r->size_seen = size;
	ns->priv = r;
	/* Whole blocks; a tail shorter than one is left out. */
	ns->size = size & ~(uint64_t)(bs - 1);
	ns->lba_shift = (uint32_t)__builtin_ctz(bs);
	/* Flush is rbd_aio_flush; cheap with librbd's cache off. */
	ns->vwc = true;
	return (0);
fail:
	rbd_ns_free(r);
	return (-1);
}

static void
rbd_submit(struct nvmf_io *io)
{
	struct namespace *ns = io->ns;
	struct rbd_ns *r = ns->priv;
	int slot = cur_loop != NULL ? cur_loop->index + 1 : 0;
	rbd_image_t image;
	rbd_completion_t c;
	int rc;

	if ((rc = backend_io_check(io)) != 0) {
		io->done(io, rc);
		return;
	}
	if (slot < 0 || slot >= r->nimg) {
		io->done(io, -EIO);
		return;
	}
	image = r->img[slot].image;
	if ((rc = rbd_aio_create_completion(io, NULL, &c)) < 0) {
		io->done(io, rc);
		return;
	}
	switch (io->op) {
	case IO_READ:
		rc = rbd_aio_readv(image, io->iov, io->iovcnt, io->offset, c);
		break;
	case IO_WRITE:
		/* A completed write is on the OSDs: FUA needs nothing more. */
		rc = rbd_aio_writev(image, io->iov, io->iovcnt, io->offset, c);
		break;
	case IO_FLUSH:
		rc = rbd_aio_flush(image, c);
		break;
	case IO_WRITE_ZEROES:
		rc = rbd_aio_write_zeroes(image, io->offset, io->len, c, 0, 0);
		break;
	case IO_DISCARD:
		rc = rbd_aio_discard(image, io->offset, io->len, c);
		break;
	default:
		rc = -EOPNOTSUPP;
		break;
	}
	if (rc < 0) {
		rbd_aio_release(c);
		io->done(io, rc);
	}
}

/* The image's size as last seen: asking librbd may wait for the cluster,
 * which the main loop must not (see rbd_changed). */
static int
rbd_probe_size(struct namespace *ns, uint64_t *bytes, char *err,
    size_t errlen)
{
	struct rbd_ns *r = ns->priv;

	*bytes = r->size_seen & ~(uint64_t)((1u << ns->lba_shift) - 1);
	return (0);
}

/* A read-only handle cannot write, and reopening blocks: refuse. */
static int
rbd_set_writable(struct namespace *ns, char *err, size_t errlen)
{
	snprintf(err, errlen, "an rbd namespace opened read-only stays so; "
	    "remove it and add it again writable");
	return (-1);
}

const struct backend_ops backend_rbd_ops = {
	.name = "rbd",
	.open = rbd_ns_open,
	.close = rbd_ns_close,
	.submit = rbd_submit,
	.set_writable = rbd_set_writable,
	.probe_size = rbd_probe_size,
};
