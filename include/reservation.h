/*
 * NVMe reservations (NVMe base 2.0 section 8.19): registrations keyed by
 * 128-bit host identifier, so every controller of one host shares them; the
 * six reservation types; the Reservation Notification log page and its
 * mask; persist through power loss in a per-namespace state file.
 *
 * The state of a namespace sits behind one mutex.  The read/write path
 * looks only at ns->resv_rtype, one atomic load: while it is 0 (no
 * reservation) every host may do anything and no lock is taken.
 */
#ifndef NVMFD_RESERVATION_H
#define NVMFD_RESERVATION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct namespace;
struct controller;
struct nvmf_cmd;

/* NVM opcodes */
#define NVME_CMD_RESV_REGISTER		0x0d
#define NVME_CMD_RESV_REPORT		0x0e
#define NVME_CMD_RESV_ACQUIRE		0x11
#define NVME_CMD_RESV_RELEASE		0x15

/* Feature identifiers and the log page */
#define NVME_FEAT_RESV_MASK		0x82
#define NVME_FEAT_RESV_PERSIST		0x83
#define NVME_LOG_RESV_NOTICE		0x80
#define NVME_AER_RESV_LOG		0x00800006u	/* I/O cmd set, log 80h */

/* Reservation types (RTYPE) */
enum resv_type {
	RESV_NONE,
	RESV_WRITE_EXCL,		/* 1 */
	RESV_EXCL_ACCESS,		/* 2 */
	RESV_WRITE_EXCL_REG_ONLY,	/* 3 */
	RESV_EXCL_ACCESS_REG_ONLY,	/* 4 */
	RESV_WRITE_EXCL_ALL_REGS,	/* 5 */
	RESV_EXCL_ACCESS_ALL_REGS,	/* 6 */
};

/* Reservation Notification log page types; mask bits are 1 << type */
#define RESV_NOTICE_REG_PREEMPTED	1
#define RESV_NOTICE_RELEASED		2
#define RESV_NOTICE_PREEMPTED		3

#define RESV_MAX_REGS	64	/* registrants per namespace */
#define RESV_LOG_DEPTH	16	/* notices a controller keeps unread */

struct resv_reg {
	uint8_t		hostid[16];
	uint64_t	key;
};

/* Everything a restart must find again with PTPL on. */
struct resv_state {
	uint32_t	gen;		/* PRGEN */
	uint8_t		rtype;		/* enum resv_type, 0 = none */
	uint8_t		holder[16];	/* host ID; unused for all-registrants */
	bool		ptpl;
	int		nregs;
	struct resv_reg	regs[RESV_MAX_REGS];
};

/* Notices a state change causes, for the hosts named. */
struct resv_notices {
	int		n;
	struct {
		uint8_t	hostid[16];
		uint8_t	type;
	}		v[RESV_MAX_REGS];
};

struct ns_resv {
	pthread_mutex_t	mtx;
	struct resv_state st;
	char		*path;		/* state file; NULL: PTPL not offered */
};

enum resv_role { RESV_ROLE_OTHER, RESV_ROLE_REGISTRANT, RESV_ROLE_HOLDER };

/* reservation.c: the pure rules */
bool	resv_access_allowed(uint8_t rtype, enum resv_role, bool write);
enum resv_role resv_role_of(const struct resv_state *, const uint8_t hostid[16]);
/* Each returns an NVMe status and fills the notices to send. */
uint16_t resv_do_register(struct resv_state *, const uint8_t hostid[16],
	    uint32_t cdw10, uint64_t crkey, uint64_t nrkey, bool ptpl_capable,
	    struct resv_notices *);
uint16_t resv_do_acquire(struct resv_state *, const uint8_t hostid[16],
	    uint32_t cdw10, uint64_t crkey, uint64_t prkey,
	    struct resv_notices *);
uint16_t resv_do_release(struct resv_state *, const uint8_t hostid[16],
	    uint32_t cdw10, uint64_t crkey, struct resv_notices *);
/* Report with EDS (64-byte entries); returns the bytes it would take. */
size_t	resv_report(const struct resv_state *, uint8_t *buf, size_t len);

/* reservation.c: namespaces and commands */
int	resv_attach(struct namespace *, const char *state_dir, char *err,
	    size_t errlen);
void	resv_detach(struct namespace *);
/* Status of an I/O command against the reservation, 0 if allowed. */
uint16_t resv_check_slow(struct nvmf_cmd *);
void	resv_dispatch(struct nvmf_cmd *);
uint16_t resv_get_ptpl(struct namespace *, uint32_t *dw0);
uint16_t resv_set_ptpl(struct namespace *, bool on);

/* resv-state.c: the state file */
int	resv_state_save(const char *path, const struct resv_state *,
	    char *err, size_t errlen);
int	resv_state_load(const char *path, struct resv_state *, char *err,
	    size_t errlen);

/* resv-log.c: a controller's notices (main loop) */
void	resv_log_post(const char *subnqn, uint32_t nsid,
	    const struct resv_notices *);
uint16_t resv_log_page(struct controller *, uint8_t *page);
uint16_t resv_mask_set(struct controller *, uint32_t nsid, uint32_t mask);
uint16_t resv_mask_get(struct controller *, uint32_t nsid, uint32_t *mask);

#endif
