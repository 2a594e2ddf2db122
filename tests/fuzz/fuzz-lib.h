/*
 * What the fuzz targets that run the daemon's own loop share: its start on
 * a small configuration, pumping its main loop, feeding a peer's bytes.
 */
#ifndef NVMFD_FUZZ_LIB_H
#define NVMFD_FUZZ_LIB_H

#include <stddef.h>
#include <stdint.h>

#include "nvmfd.h"

/* In an input: the bytes after SPLIT go to another connection; PAUSE lets
 * the other side answer what came before first. */
#define FUZZ_SPLIT	"NVMFUZZ2"
#define FUZZ_PAUSE	"NVMFUZZ/"

/* syslog, to keep libFuzzer's output readable; NVMFD_FUZZ_LOG=1 shows the
 * daemon's debug log on stderr, to follow one input. */
void	fuzz_log_init(void);
/* cf (NULL: the built-in default with a 1 MiB RAM namespace) becomes the
 * running configuration, its ports listening on free ports the kernel
 * picks (written back into it), on the main loop alone (no workers).
 * Aborts on failure. */
struct config *fuzz_daemon_start(struct config *cf);
/* Run the main loop's ready callbacks rounds times, reading and dropping
 * what peer (-1: none) has been sent meanwhile. */
void	fuzz_pump(int peer, int rounds);
/* Write data to fd in pieces with the loop running between them, as a
 * network would deliver it; stops if the daemon hangs up. */
void	fuzz_feed(int fd, const uint8_t *data, size_t size);
/* A non-blocking connection to the Unix socket at path. */
int	fuzz_unix_connect(const char *path);
/* A new private directory, removed with what is in it at exit. */
const char *fuzz_tmpdir(const char *name);

#endif
