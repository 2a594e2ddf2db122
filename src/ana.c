/*
 * Asymmetric Namespace Access: group states by port, the ANA log page and
 * the ANA change event.  States change on the main loop (nvmfctl set-ana,
 * reload); workers read them for every I/O command through ana_io_status(),
 * which costs one load while no state is set on the subsystem.
 */
#include "config.h"

#include <string.h>

#include "nvmfd.h"

static const struct {
	uint8_t		 state;
	const char	*name;
} ana_names[] = {
	/* The names Linux shows in its sysfs ana_state files. */
	{ ANA_OPTIMIZED, "optimized" },
	{ ANA_NON_OPTIMIZED, "non-optimized" },
	{ ANA_INACCESSIBLE, "inaccessible" },
	{ ANA_PERSISTENT_LOSS, "persistent-loss" },
	{ ANA_CHANGE, "change" },
};

const char *
ana_state_name(uint8_t state)
{
	for (size_t i = 0; i < nitems(ana_names); i++)
		if (ana_names[i].state == state)
			return (ana_names[i].name);
	return ("unknown");
}

int
ana_state_parse(const char *s, uint8_t *state)
{
	for (size_t i = 0; i < nitems(ana_names); i++)
		if (strcmp(ana_names[i].name, s) == 0) {
			*state = ana_names[i].state;
			return (0);
		}
	return (-1);
}

static bool
state_valid(uint8_t state)
{
	return (strcmp(ana_state_name(state), "unknown") != 0);
}

static int
slot_of(const struct ana_map *m, uint16_t port_id)
{
	unsigned n = atomic_load_explicit(&m->nports, memory_order_acquire);

	for (unsigned i = 0; i < n; i++)
		if (m->port_id[i] == port_id)
			return ((int)i);
	return (-1);
}

uint8_t
ana_state(const struct ana_map *m, uint32_t grpid, uint16_t port_id)
{
	uint8_t st;
	int i;

	if (grpid == 0 || grpid > ANA_GRPMAX || (i = slot_of(m, port_id)) < 0)
		return (ANA_OPTIMIZED);
	st = atomic_load_explicit(&m->state[i][grpid], memory_order_relaxed);
	return (st == 0 ? ANA_OPTIMIZED : st);
}

int
ana_set(struct ana_map *m, uint32_t grpid, uint16_t port_id, uint8_t state)
{
	unsigned n;
	int i;

	if (grpid == 0 || grpid > ANA_GRPMAX || !state_valid(state))
		return (-1);
	if (ana_state(m, grpid, port_id) == state)
		return (0);
	if ((i = slot_of(m, port_id)) < 0) {
		n = atomic_load_explicit(&m->nports, memory_order_relaxed);
		if (n == ANA_PORTS)
			return (-1);
		m->port_id[n] = port_id;
		for (uint32_t g = 0; g <= ANA_GRPMAX; g++)
			atomic_store_explicit(&m->state[n][g], 0,
			    memory_order_relaxed);
		/* The slot is whole before a worker can find it. */
		atomic_store_explicit(&m->nports, n + 1, memory_order_release);
		i = (int)n;
	}
	atomic_store_explicit(&m->state[i][grpid], state, memory_order_relaxed);
	return (1);
}

bool
ana_group_has_states(const struct ana_map *m, uint32_t grpid)
{
	unsigned n = atomic_load_explicit(&m->nports, memory_order_acquire);

	for (unsigned i = 0; i < n; i++)
		if (ana_state(m, grpid, m->port_id[i]) != ANA_OPTIMIZED)
			return (true);
	return (false);
}

bool
ana_group_listed(struct subsystem *ss, uint32_t grpid)
{
	struct namespace *ns;

	if (grpid == ANA_DEFAULT_GROUP || ana_group_has_states(&ss->ana, grpid))
		return (true);
	TAILQ_FOREACH(ns, &ss->namespaces, entry)
		if (ns->anagrpid == grpid)
			return (true);
	return (false);
}

uint16_t
ana_io_status(const struct subsystem *ss, const struct namespace *ns,
    uint16_t port_id)
{
	const struct ana_map *m = &ss->ana;

	if (atomic_load_explicit(&m->nports, memory_order_acquire) == 0)
		return (0);
	switch (ana_state(m, atomic_load_explicit(&ns->anagrpid,
	    memory_order_relaxed), port_id)) {
	case ANA_INACCESSIBLE:
		return (NVME_SC_ANA_INACCESSIBLE);
	case ANA_PERSISTENT_LOSS:
		return (NVME_SC_ANA_PERSISTENT_LOSS);
	case ANA_CHANGE:
		return (NVME_SC_ANA_TRANSITION);
	default:
		return (0);
	}
}

/* Linux sizes its read by NANAGRPID and MNAN (nvme_mpath_init_identify);
 * the log never holds more than that. */
size_t
ana_log_max(void)
{
	return (16 + ANA_GRPMAX * 32 + NVMFD_MAX_NSID * 4);
}

/*
 * Header: CHGCNT (8), NGRPS (2).  Then per group, in ascending ID order, a
 * 32-byte descriptor (ANAGRPID, NNSIDS, CHGCNT, state) and its NSIDs in
 * ascending order, as Linux walks them against its own sorted list.
 */
size_t
ana_log_build(struct controller *ctrl, bool rgo, uint8_t *p)
{
	struct subsystem *ss = ctrl->subsys;
	struct namespace *ns;
	uint8_t *d = p + 16;
	uint16_t ngrps = 0;

	put_le64(p, ss->ana.chgcnt);
	for (uint32_t g = 1; g <= ANA_GRPMAX; g++) {
		uint32_t n = 0;

		if (!ana_group_listed(ss, g))
			continue;
		put_le32(d, g);
		put_le64(d + 8, ss->ana.chgcnt);
		d[16] = ana_state(&ss->ana, g, ctrl->port->id);
		TAILQ_FOREACH(ns, &ss->namespaces, entry)
			if (!rgo && ns->anagrpid == g)
				put_le32(d + 32 + 4 * n++, ns->nsid);
		put_le32(d + 4, n);
		d += 32 + 4 * n;
		ngrps++;
	}
	put_le16(p + 8, ngrps);
	return ((size_t)(d - p));
}

void
ana_changed(struct subsystem *ss, int port_id)
{
	struct controller *ctrl;

	ss->ana.chgcnt++;
	TAILQ_FOREACH(ctrl, &ss->controllers, entry)
		if ((port_id < 0 || ctrl->port->id == port_id) &&
		    (ctrl->aen_cfg & NVME_AEN_CFG_ANA_CHANGE))
			ctrl_event(ctrl, NVME_AER_ANA_CHANGED);
}

/* A port went: its states go too, or they would outlive it in a saved
 * file and greet a new port given the same ID. */
void
ana_forget_port(struct ana_map *m, uint16_t port_id)
{
	for (uint32_t g = 1; g <= ANA_GRPMAX; g++)
		ana_set(m, g, port_id, ANA_OPTIMIZED);
}

/* Every state either map knows of, as next has it. */
bool
ana_copy(struct ana_map *r, const struct ana_map *next)
{
	const struct ana_map *maps[2] = { r, next };
	bool changed = false;

	for (int k = 0; k < 2; k++) {
		unsigned n = atomic_load(&maps[k]->nports);

		for (unsigned i = 0; i < n; i++) {
			uint16_t pid = maps[k]->port_id[i];

			for (uint32_t g = 1; g <= ANA_GRPMAX; g++) {
				int rc = ana_set(r, g, pid,
				    ana_state(next, g, pid));

				if (rc < 0)
					log_warnx("ANA: no room for the "
					    "states of port %u", pid);
				changed |= rc == 1;
			}
		}
	}
	return (changed);
}

void
ana_move_ns(struct namespace *ns, uint32_t grpid)
{
	if (ns->anagrpid == grpid)
		return;
	atomic_store(&ns->anagrpid, grpid);
	/* The group is a namespace attribute, and the ANA log changed. */
	ctrl_notify_ns_changed(ns->subsys, ns->nsid);
	ana_changed(ns->subsys, -1);
}
