/*
 * The reservation state file of a namespace (persist through power loss):
 * a few lines of text, replaced atomically (state-file.c), so a crash
 * leaves either the old state or the new one.  PTPL off removes the file.
 *
 *	nvmfd-reservations 1
 *	gen 7
 *	type 1 <holder host ID, 32 hex digits>
 *	reg <host ID> <key, 16 hex digits>
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmfd.h"
#include "reservation.h"

#define STATE_MAGIC	"nvmfd-reservations 1"

static void
hex_id(char out[33], const uint8_t id[16])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static int
parse_id(const char *s, uint8_t id[16])
{
	if (strlen(s) != 32)
		return (-1);
	for (int i = 0; i < 16; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
		    strspn(s + 2 * i, "0123456789abcdefABCDEF") < 2)
			return (-1);
		id[i] = v;
	}
	return (0);
}

int
resv_state_save(const char *path, const struct resv_state *st, char *err,
    size_t errlen)
{
	char id[33], *text = NULL;
	size_t len = 0;
	FILE *fp;
	int rc;

	if (!st->ptpl)
		return (state_file_remove(path, err, errlen));
	if ((fp = open_memstream(&text, &len)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (-1);
	}
	fprintf(fp, "%s\ngen %" PRIu32 "\n", STATE_MAGIC, st->gen);
	if (st->rtype != RESV_NONE) {
		hex_id(id, st->holder);
		fprintf(fp, "type %u %s\n", st->rtype, id);
	}
	for (int i = 0; i < st->nregs; i++) {
		hex_id(id, st->regs[i].hostid);
		fprintf(fp, "reg %s %016" PRIx64 "\n", id, st->regs[i].key);
	}
	if (fclose(fp) != 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(text);
		return (-1);
	}
	rc = state_file_write(path, text, len, err, errlen);
	free(text);
	return (rc);
}

/* One line of the file into st; -1 with err naming what is wrong. */
static int
parse_line(char *line, struct resv_state *st, char *err, size_t errlen)
{
	char word[16], a[40], b[40], extra;
	unsigned long long v;
	unsigned t;
	int n;

	n = sscanf(line, "%15s %39s %39s %c", word, a, b, &extra);
	if (n == 2 && strcmp(word, "gen") == 0) {
		if (sscanf(a, "%llu%c", &v, &extra) != 1 || v > UINT32_MAX)
			goto bad;
		st->gen = v;
		return (0);
	}
	if (n == 3 && strcmp(word, "type") == 0) {
		if (sscanf(a, "%u%c", &t, &extra) != 1 ||
		    t < RESV_WRITE_EXCL || t > RESV_EXCL_ACCESS_ALL_REGS ||
		    parse_id(b, st->holder) != 0)
			goto bad;
		st->rtype = t;
		return (0);
	}
	if (n == 3 && strcmp(word, "reg") == 0) {
		struct resv_reg *r;

		if (st->nregs == RESV_MAX_REGS) {
			snprintf(err, errlen, "more than %d registrants",
			    RESV_MAX_REGS);
			return (-1);
		}
		r = &st->regs[st->nregs];
		if (parse_id(a, r->hostid) != 0 || strlen(b) != 16 ||
		    strspn(b, "0123456789abcdefABCDEF") != 16 ||
		    (r->key = strtoull(b, NULL, 16)) == 0)
			goto bad;
		for (int i = 0; i < st->nregs; i++)
			if (memcmp(st->regs[i].hostid, r->hostid, 16) == 0) {
				snprintf(err, errlen, "host %s registered "
				    "twice", a);
				return (-1);
			}
		st->nregs++;
		return (0);
	}
bad:
	snprintf(err, errlen, "not a valid line");
	return (-1);
}

/* No file: no saved state (PTPL off).  A damaged file is an error: the
 * fence it held must not quietly vanish. */
int
resv_state_load(const char *path, struct resv_state *st, char *err,
    size_t errlen)
{
	char line[256], why[128];
	FILE *fp;
	int lineno = 0, rc = 0;

	memset(st, 0, sizeof(*st));
	if ((fp = fopen(path, "re")) == NULL) {
		if (errno == ENOENT)
			return (0);
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (-1);
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			snprintf(why, sizeof(why), "line too long");
			rc = -1;
		} else if (lineno == 1) {
			line[strcspn(line, "\n")] = '\0';
			if (strcmp(line, STATE_MAGIC) != 0) {
				snprintf(why, sizeof(why), "not a reservation "
				    "state file (expected \"%s\")", STATE_MAGIC);
				rc = -1;
			}
		} else
			rc = parse_line(line, st, why, sizeof(why));
		if (rc != 0)
			break;
	}
	if (rc == 0 && lineno == 0) {
		snprintf(why, sizeof(why), "empty file");
		rc = -1;
	}
	if (rc == 0 && st->rtype != RESV_NONE) {
		bool found = false;

		for (int i = 0; i < st->nregs; i++)
			found |= memcmp(st->regs[i].hostid, st->holder, 16) == 0;
		if (!found) {
			snprintf(why, sizeof(why), "the holder is not a "
			    "registrant");
			lineno++;
			rc = -1;
		}
	}
	fclose(fp);
	if (rc != 0) {
		snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
		memset(st, 0, sizeof(*st));
		return (-1);
	}
	st->ptpl = true;
	return (0);
}
