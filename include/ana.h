/*
 * Asymmetric Namespace Access (NVMe base 2.0 section 8.1): every namespace
 * belongs to an ANA group of its subsystem, and each group has a state on
 * each port.  Hosts read the states of the port they came through in the
 * ANA log page (LID 0Ch) and pick their paths by it.
 */
#ifndef NVMFD_ANA_H
#define NVMFD_ANA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ANA_GRPMAX	32	/* ANAGRPMAX and NANAGRPID: groups 1..32 */
#define ANA_PORTS	16	/* ports of a subsystem with states set */
#define ANA_TT		10	/* ANATT: seconds a group may stay in change */
#define ANA_DEFAULT_GROUP 1

/* Asymmetric Namespace Access states, as the log page encodes them. */
#define ANA_OPTIMIZED		0x1
#define ANA_NON_OPTIMIZED	0x2
#define ANA_INACCESSIBLE	0x3
#define ANA_PERSISTENT_LOSS	0x4
#define ANA_CHANGE		0xf

/* Get Log Page LSP bit 0 for the ANA log: Return Groups Only. */
#define ANA_LOG_RGO		0x1

/*
 * The states of one subsystem's groups, by port.  Changed on the main loop
 * only; workers read a state with one relaxed load per command.  A slot's
 * port_id is written before nports counts it, and slots are never reused
 * for another port, so a reader never sees a half-made slot.  A state of 0
 * was never set and reads as optimized.
 */
struct ana_map {
	atomic_uint	nports;
	uint16_t	port_id[ANA_PORTS];
	_Atomic uint8_t	state[ANA_PORTS][ANA_GRPMAX + 1];
	uint64_t	chgcnt;		/* CHGCNT of the log page */
};

struct subsystem;
struct namespace;
struct controller;

const char *ana_state_name(uint8_t state);
int	ana_state_parse(const char *, uint8_t *state);	/* 0, or -1 */
/* The state of group grpid on port port_id. */
uint8_t	ana_state(const struct ana_map *, uint32_t grpid, uint16_t port_id);
/* 1 changed, 0 already so, -1 no free port slot or a bad group/state.
 * Neither counts the change nor tells hosts: see ana_changed(). */
int	ana_set(struct ana_map *, uint32_t grpid, uint16_t port_id,
	    uint8_t state);
/* A state other than optimized was set somewhere for grpid. */
bool	ana_group_has_states(const struct ana_map *, uint32_t grpid);
/* The group exists for the log: group 1, a namespace in it, or a state. */
bool	ana_group_listed(struct subsystem *, uint32_t grpid);
/* Status for an I/O command to ns through port_id: 0 lets it run, else the
 * path-related status (SCT 3h) the host fails over on. */
uint16_t ana_io_status(const struct subsystem *, const struct namespace *,
	    uint16_t port_id);
/* Largest log: header, every group, every NSID (what Linux reads). */
size_t	ana_log_max(void);
/* Build ctrl's view (its port) of its subsystem's log into p, zeroed and
 * ana_log_max() bytes long; returns the length. */
size_t	ana_log_build(struct controller *, bool rgo, uint8_t *p);
/* Count a change of ss's ANA information and send the ANA change event to
 * its controllers on port_id (-1: on every port). */
void	ana_changed(struct subsystem *, int port_id);
void	ana_forget_port(struct ana_map *, uint16_t port_id);
/* Take next's states into running (reload); true if any changed. */
bool	ana_copy(struct ana_map *running, const struct ana_map *next);
/* Move ns to group grpid live: hosts are told both ways. */
void	ana_move_ns(struct namespace *, uint32_t grpid);

#endif
