/*
 * nvmfd control protocol, shared by the daemon (control.c) and nvmfctl
 * (cli.c).  A stream of framed messages on a Unix socket; every field is
 * little-endian.  Each request gets zero or more OUTPUT messages and then
 * exactly one RESULT, which also ends any listing.  Bump CTL_VERSION when a
 * message changes meaning.
 */
#ifndef NVMFD_CTL_PROTO_H
#define NVMFD_CTL_PROTO_H

#include <stdint.h>

#define CTL_MAGIC		0x434d564eu	/* "NVMC" */
#define CTL_VERSION		1
#define CTL_MAX_REQUEST		(64 * 1024)	/* request payload bytes */
#define CTL_MAX_ARGS		128
#define CTL_RUN_DIR		"/run/nvmfd"
#define CTL_DEFAULT_SOCKET	CTL_RUN_DIR "/nvmfd.sock"

struct ctl_hdr {
	uint32_t	magic;
	uint16_t	version;
	uint16_t	type;		/* enum ctl_type */
	uint32_t	len;		/* payload bytes after this header */
} __attribute__((packed));
_Static_assert(sizeof(struct ctl_hdr) == 12, "control header");

enum ctl_type {
	CTL_REQUEST	= 1,	/* u32 flags, u32 argc, argc NUL-terminated args */
	CTL_OUTPUT	= 2,	/* text or JSON to print as is */
	CTL_RESULT	= 3,	/* u32 code, NUL-terminated message */
};

#define CTL_F_JSON		(1u << 0)	/* output JSON, not tables */

/* Result codes; nvmfctl exits with the same number. */
enum ctl_code {
	CTL_OK		= 0,
	CTL_ERR		= 1,	/* the command failed */
	CTL_EUSAGE	= 2,	/* bad command, option or argument */
	CTL_ENOENT	= 3,	/* no such subsystem, namespace, port ... */
	CTL_EEXIST	= 4,	/* it exists already */
	CTL_EPERM	= 5,	/* not allowed on this socket or for this user */
	CTL_EPROTO	= 6,	/* malformed message or unknown version */
	CTL_EBUSY	= 7,	/* a limit was reached */
	CTL_ECONN	= 8,	/* nvmfctl could not reach the daemon */
};

#endif
