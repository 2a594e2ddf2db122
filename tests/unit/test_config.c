/*
 * Configuration loader and subsystem helpers: defaults, a full file, every
 * kind of error with its exact position and key, sizes, derived IDs, NQNs.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmfd.h"
#include "host.h"

static char errbuf[1024];

/* Write text to a fresh temporary file; the caller unlinks and frees. */
static char *
write_tmp(const char *text)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	size_t len = strlen(text);
	int fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	ck_assert_int_ne(asprintf(&path, "%s/nvmfd-test-XXXXXX", dir), -1);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return (path);
}

static struct config *
load_text(const char *text)
{
	struct config *cfg;
	char *path = write_tmp(text);

	errbuf[0] = '\0';
	cfg = config_load(path, errbuf, sizeof(errbuf));
	if (cfg != NULL)
		ck_assert_str_eq(cfg->path, path);
	unlink(path);
	free(path);
	return (cfg);
}

static struct config *
load_ok(int srcline, const char *text)
{
	struct config *cfg = load_text(text);

	ck_assert_msg(cfg != NULL, "line %d: load failed: %s", srcline, errbuf);
	return (cfg);
}
#define LOAD_OK(text)	load_ok(__LINE__, text)

/*
 * The load must fail with "TMPFILE:line:col: key: ..." and the message
 * must contain msg (when given).
 */
static void
expect_err(int srcline, const char *text, int line, int col, const char *key,
    const char *msg)
{
	struct config *cfg;
	char *path = write_tmp(text);
	char want[512];

	errbuf[0] = '\0';
	cfg = config_load(path, errbuf, sizeof(errbuf));
	ck_assert_msg(cfg == NULL, "line %d: load succeeded", srcline);
	snprintf(want, sizeof(want), "%s:%d:%d: %s: ", path, line, col, key);
	ck_assert_msg(strncmp(errbuf, want, strlen(want)) == 0,
	    "line %d: want prefix \"%s\", got \"%s\"", srcline, want, errbuf);
	if (msg != NULL)
		ck_assert_msg(strstr(errbuf + strlen(want), msg) != NULL,
		    "line %d: want \"%s\" in \"%s\"", srcline, msg, errbuf);
	unlink(path);
	free(path);
}
#define EXPECT_ERR(text, line, col, key, msg) \
	expect_err(__LINE__, text, line, col, key, msg)

/* A valid config around one namespace body (indented 8 columns). */
#define NS_HEAD \
	"ports:\n" \
	"  - address: 127.0.0.1\n" \
	"subsystems:\n" \
	"  - nqn: nqn.2026-11.io.nvmfd:t\n" \
	"    namespaces:\n"

static struct subsystem *
first_subsys(struct config *cfg)
{
	return (TAILQ_FIRST(&cfg->subsystems));
}

static struct namespace *
first_ns(struct config *cfg)
{
	return (TAILQ_FIRST(&first_subsys(cfg)->namespaces));
}

/* ------------------------------------------------------------- defaults */

START_TEST(test_default)
{
	struct config *cfg = config_default();
	struct port *p;
	struct subsystem *s;
	struct namespace *ns;

	ck_assert_ptr_nonnull(cfg);
	ck_assert_ptr_null(cfg->path);
	ck_assert_int_eq(cfg->workers, 0);
	ck_assert_uint_eq(cfg->poll_us, 50);
	ck_assert_uint_eq(cfg->mdts, 1 << 20);
	ck_assert_uint_eq(cfg->max_controllers, 256);
	ck_assert_uint_eq(cfg->max_disc_controllers, 64);
	ck_assert_uint_eq(cfg->max_connections, 1024);

	p = TAILQ_FIRST(&cfg->ports);
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_null(TAILQ_NEXT(p, entry));
	ck_assert_uint_eq(p->id, 1);
	ck_assert_str_eq(p->address, "127.0.0.1");
	ck_assert_str_eq(p->service, "4420");
	ck_assert_int_eq(p->family, AF_INET);
	ck_assert_uint_eq(p->inline_data_size, 16384);
	ck_assert_uint_eq(p->maxh2cdata, 131072);
	ck_assert_uint_eq(p->max_queue_depth, 128);
	ck_assert(p->header_digest);
	ck_assert(p->data_digest);
	ck_assert_int_eq(p->fd, -1);

	s = first_subsys(cfg);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_null(TAILQ_NEXT(s, entry));
	ck_assert_str_eq(s->nqn, NVMFD_DEFAULT_NQN);
	ck_assert(s->allow_any_host);
	ck_assert(TAILQ_EMPTY(&s->hosts));
	ck_assert_ptr_null(s->port_ids);
	ck_assert_uint_eq(s->max_io_queues, 32);
	ck_assert_str_eq(s->model, "nvmfd");
	ck_assert_uint_eq(strlen(s->serial), 20);
	ck_assert(TAILQ_EMPTY(&s->controllers));
	ck_assert_uint_eq(s->next_cntlid, 1);

	ns = first_ns(cfg);
	ck_assert_ptr_nonnull(ns);
	ck_assert_ptr_null(TAILQ_NEXT(ns, entry));
	ck_assert_uint_eq(ns->nsid, 1);
	ck_assert_int_eq(ns->type, BACKEND_RAM);
	ck_assert_uint_eq(ns->size, 1ULL << 30);
	ck_assert_uint_eq(ns->block_size, 512);
	ck_assert_ptr_eq(ns->subsys, s);
	ck_assert(!ns->readonly);
	ck_assert(ns->has_uuid && ns->has_nguid && ns->has_eui64);
	ck_assert_int_eq(ns->fd, -1);
	ck_assert(TAILQ_EMPTY(&cfg->referrals));
	config_free(cfg);
	config_free(NULL);
}
END_TEST

/* The adaptive polling default can still be turned off. */
START_TEST(test_poll_off)
{
	struct config *cfg = LOAD_OK("poll_us: 0\n"
	    "ports:\n"
	    "  - address: 127.0.0.1\n");

	ck_assert_uint_eq(cfg->poll_us, 0);
	config_free(cfg);
}
END_TEST

/* Reservation state files: an absolute directory, or none. */
START_TEST(test_state_dir)
{
	struct config *cfg = LOAD_OK("state_dir: /var/lib/nvmfd/state\n"
	    "ports:\n"
	    "  - address: 127.0.0.1\n");

	ck_assert_str_eq(cfg->state_dir, "/var/lib/nvmfd/state");
	config_free(cfg);
	EXPECT_ERR("state_dir: state\n", 1, 12, "state_dir",
	    "must be an absolute path");
	EXPECT_ERR("state_dir: [a]\n", 1, 12, "state_dir", NULL);
}
END_TEST

START_TEST(test_minimal_defaults)
{
	struct config *cfg;
	struct port *p;
	struct subsystem *s;
	struct namespace *ns;

	cfg = LOAD_OK(
	    "ports:\n"
	    "  - address: \"::\"\n"
	    "subsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:min\n"
	    "    namespaces:\n"
	    "      - backend: ram\n"
	    "        size: 16M\n");
	ck_assert_int_eq(cfg->workers, 0);
	ck_assert_uint_eq(cfg->poll_us, 50);
	ck_assert_uint_eq(cfg->mdts, 1 << 20);
	ck_assert_uint_eq(cfg->max_controllers, 256);
	ck_assert_uint_eq(cfg->max_disc_controllers, 64);
	ck_assert_uint_eq(cfg->max_connections, 1024);
	p = TAILQ_FIRST(&cfg->ports);
	ck_assert_uint_eq(p->id, 1);
	ck_assert_int_eq(p->family, AF_INET6);
	ck_assert_str_eq(p->service, "4420");
	ck_assert_uint_eq(p->inline_data_size, 16384);
	ck_assert_uint_eq(p->maxh2cdata, 131072);
	ck_assert_uint_eq(p->max_queue_depth, 128);
	ck_assert(p->header_digest && p->data_digest);
	ck_assert_int_eq(p->fd, -1);
	ck_assert_int_eq(p->cfg_line, 2);
	ck_assert_int_eq(p->cfg_col, 5);
	s = first_subsys(cfg);
	ck_assert(s->allow_any_host);
	ck_assert_ptr_null(s->port_ids);
	ck_assert_uint_eq(s->max_io_queues, 32);
	ck_assert_str_eq(s->model, "nvmfd");
	ck_assert_uint_eq(strlen(s->serial), 20);
	ck_assert_uint_eq(s->next_cntlid, 1);
	ck_assert(TAILQ_EMPTY(&s->controllers));
	ck_assert_int_eq(s->cfg_line, 4);
	ck_assert_int_eq(s->cfg_col, 5);
	ns = first_ns(cfg);
	ck_assert_uint_eq(ns->nsid, 1);
	ck_assert_uint_eq(ns->size, 16 << 20);
	ck_assert_uint_eq(ns->block_size, 512);
	ck_assert(!ns->readonly && !ns->direct);
	ck_assert_int_eq(ns->populate, RAM_POPULATE_BACKGROUND);
	ck_assert_int_eq(ns->fd, -1);
	ck_assert_int_eq(ns->cfg_line, 6);
	ck_assert_int_eq(ns->cfg_col, 9);
	config_free(cfg);

	/* No subsystems at all is a discovery-only target. */
	cfg = LOAD_OK("ports:\n  - address: 0.0.0.0\n    port: 8009\n");
	ck_assert(TAILQ_EMPTY(&cfg->subsystems));
	config_free(cfg);
}
END_TEST

/* ------------------------------------------------------------ full file */

static const char full_yaml[] =
    "# every key\n"
    "workers: 3\n"
    "poll_us: 20\n"
    "mdts: 256K\n"
    "max_controllers: 10\n"
    "max_connections: 99\n"
    "ports:\n"
    "  - id: 7\n"
    "    address: 192.0.2.1\n"
    "    port: 4421\n"
    "    inline_data_size: 8K\n"
    "    maxh2cdata: 64KiB\n"
    "    max_queue_depth: 64\n"
    "    header_digest: false\n"
    "    data_digest: no\n"
    "  - address: \"2001:db8::1\"\n"
    "subsystems:\n"
    "  - nqn: nqn.2026-11.io.nvmfd:full\n"
    "    serial: SN-0001\n"
    "    model: Test Model\n"
    "    hosts:\n"
    "      - nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-1111-2222-3333-444455556666\n"
    "      - nqn.2026-11.io.example:host2\n"
    "    ports: [7]\n"
    "    max_io_queues: 4\n"
    "    namespaces:\n"
    "      - nsid: 5\n"
    "        backend: file\n"
    "        path: /var/lib/nvmfd/disk.img\n"
    "        size: 1G\n"
    "        block_size: 4096\n"
    "        readonly: true\n"
    "        direct: true\n"
    "        uuid: 0B1D2C3E-4F50-4A6B-8C7D-9E0F1A2B3C4D\n"
    "        nguid: 00112233-44556677-8899aabb-ccddeeff\n"
    "        eui64: \"02:00:00:00:00:00:00:01\"\n"
    "      - backend: block\n"
    "        path: /dev/nvme9n1\n"
    "      - backend: ram\n"
    "        size: 1M\n"
    "  - nqn: nqn.2026-11.io.nvmfd:second\n"
    "    hosts: any\n"
    "referrals:\n"
    "  - address: 198.51.100.7\n"
    "    port: 8010\n"
    "    port_id: 3\n"
    "  - address: \"2001:db8::2\"\n"
    "max_discovery_controllers: 7\n";

START_TEST(test_full)
{
	static const uint8_t uuid[16] = { 0x0b, 0x1d, 0x2c, 0x3e, 0x4f, 0x50,
	    0x4a, 0x6b, 0x8c, 0x7d, 0x9e, 0x0f, 0x1a, 0x2b, 0x3c, 0x4d };
	static const uint8_t nguid[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
	    0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	static const uint8_t eui64[8] = { 2, 0, 0, 0, 0, 0, 0, 1 };
	struct config *cfg = LOAD_OK(full_yaml);
	struct port *p;
	struct subsystem *s;
	struct namespace *ns;
	struct host *h;
	struct referral *r;

	ck_assert_int_eq(cfg->workers, 3);
	ck_assert_uint_eq(cfg->poll_us, 20);
	ck_assert_uint_eq(cfg->mdts, 256 * 1024);
	ck_assert_uint_eq(cfg->max_controllers, 10);
	ck_assert_uint_eq(cfg->max_disc_controllers, 7);
	ck_assert_uint_eq(cfg->max_connections, 99);

	p = TAILQ_FIRST(&cfg->ports);
	ck_assert_uint_eq(p->id, 7);
	ck_assert_str_eq(p->address, "192.0.2.1");
	ck_assert_str_eq(p->service, "4421");
	ck_assert_int_eq(p->family, AF_INET);
	ck_assert_uint_eq(p->inline_data_size, 8192);
	ck_assert_uint_eq(p->maxh2cdata, 65536);
	ck_assert_uint_eq(p->max_queue_depth, 64);
	ck_assert(!p->header_digest);
	ck_assert(!p->data_digest);
	ck_assert_int_eq(p->cfg_line, 8);
	ck_assert_int_eq(p->cfg_col, 5);
	p = TAILQ_NEXT(p, entry);
	ck_assert_uint_eq(p->id, 1);	/* lowest unused id */
	ck_assert_str_eq(p->address, "2001:db8::1");
	ck_assert_int_eq(p->family, AF_INET6);
	ck_assert_ptr_null(TAILQ_NEXT(p, entry));
	ck_assert_ptr_eq(port_find(cfg, 7), TAILQ_FIRST(&cfg->ports));
	ck_assert_ptr_eq(port_find(cfg, 1), p);
	ck_assert_ptr_null(port_find(cfg, 2));

	s = first_subsys(cfg);
	ck_assert_str_eq(s->nqn, "nqn.2026-11.io.nvmfd:full");
	ck_assert_str_eq(s->serial, "SN-0001");
	ck_assert_str_eq(s->model, "Test Model");
	ck_assert(!s->allow_any_host);
	h = TAILQ_FIRST(&s->hosts);
	ck_assert_str_eq(h->nqn, "nqn.2014-08.org.nvmexpress:uuid:"
	    "0b0b0b0b-1111-2222-3333-444455556666");
	h = TAILQ_NEXT(h, entry);
	ck_assert_str_eq(h->nqn, "nqn.2026-11.io.example:host2");
	ck_assert_ptr_null(TAILQ_NEXT(h, entry));
	ck_assert(subsystem_host_allowed(s, "nqn.2026-11.io.example:host2",
	    NULL));
	ck_assert(!subsystem_host_allowed(s, "nqn.2026-11.io.example:host3",
	    NULL));
	ck_assert(!subsystem_host_allowed(s, NULL, NULL));
	ck_assert_uint_eq(s->nport_ids, 1);
	ck_assert_uint_eq(s->port_ids[0], 7);
	ck_assert(subsystem_on_port(s, port_find(cfg, 7)));
	ck_assert(!subsystem_on_port(s, port_find(cfg, 1)));
	ck_assert_uint_eq(s->max_io_queues, 4);

	/* Sorted by NSID; the two without one got 1 and 2. */
	ns = TAILQ_FIRST(&s->namespaces);
	ck_assert_uint_eq(ns->nsid, 1);
	ck_assert_int_eq(ns->type, BACKEND_BLOCK);
	ck_assert_str_eq(ns->path, "/dev/nvme9n1");
	ck_assert_uint_eq(ns->block_size, 0);
	ck_assert_uint_eq(ns->size, 0);
	ck_assert_int_eq(ns->cfg_line, 37);
	ns = TAILQ_NEXT(ns, entry);
	ck_assert_uint_eq(ns->nsid, 2);
	ck_assert_int_eq(ns->type, BACKEND_RAM);
	ck_assert_uint_eq(ns->size, 1 << 20);
	ck_assert_uint_eq(ns->block_size, 512);
	ck_assert_ptr_null(ns->path);
	ns = TAILQ_NEXT(ns, entry);
	ck_assert_uint_eq(ns->nsid, 5);
	ck_assert_int_eq(ns->type, BACKEND_FILE);
	ck_assert_str_eq(ns->path, "/var/lib/nvmfd/disk.img");
	ck_assert_uint_eq(ns->size, 1ULL << 30);
	ck_assert_uint_eq(ns->block_size, 4096);
	ck_assert(ns->readonly);
	ck_assert(ns->direct);
	ck_assert(ns->has_uuid && ns->has_nguid && ns->has_eui64);
	ck_assert_mem_eq(ns->uuid, uuid, 16);
	ck_assert_mem_eq(ns->nguid, nguid, 16);
	ck_assert_mem_eq(ns->eui64, eui64, 8);
	ck_assert_int_eq(ns->cfg_line, 27);
	ck_assert_int_eq(ns->cfg_col, 9);
	ck_assert_ptr_eq(ns->subsys, s);
	ck_assert_ptr_null(TAILQ_NEXT(ns, entry));
	ck_assert_ptr_eq(namespace_find(s, 5), ns);
	ck_assert_ptr_null(namespace_find(s, 3));
	ck_assert_ptr_null(namespace_find(s, 6));

	s = TAILQ_NEXT(s, entry);
	ck_assert_str_eq(s->nqn, "nqn.2026-11.io.nvmfd:second");
	ck_assert(s->allow_any_host);
	ck_assert(subsystem_host_allowed(s, "nqn.2026-11.io.example:any",
	    NULL));
	ck_assert(TAILQ_EMPTY(&s->namespaces));
	ck_assert(subsystem_on_port(s, port_find(cfg, 1)));
	ck_assert_ptr_eq(subsystem_find(cfg, "nqn.2026-11.io.nvmfd:second"), s);
	ck_assert_ptr_null(subsystem_find(cfg, "nqn.2026-11.io.nvmfd:nope"));

	r = TAILQ_FIRST(&cfg->referrals);
	ck_assert_str_eq(r->address, "198.51.100.7");
	ck_assert_str_eq(r->service, "8010");
	ck_assert_int_eq(r->family, AF_INET);
	ck_assert_uint_eq(r->port_id, 3);
	r = TAILQ_NEXT(r, entry);
	ck_assert_str_eq(r->address, "2001:db8::2");
	ck_assert_str_eq(r->service, "8009");
	ck_assert_int_eq(r->family, AF_INET6);
	ck_assert_uint_eq(r->port_id, 1);
	config_free(cfg);
}
END_TEST

#define HOST_HEAD	"ports:\n  - address: 127.0.0.1\n"

/* host.nbd.tls and a connection's nbd_tls. */
START_TEST(test_host_nbd_tls)
{
	struct config *cfg;

	cfg = LOAD_OK(HOST_HEAD "host:\n  nbd:\n    tls: optional\n"
	    "    tls_psk_file: /etc/nvmfd/nbd.psk\n  connections:\n"
	    "    - {address: 127.0.0.1, nqn: nqn.2026-11.io.nvmfd:t, "
	    "nbd_tls: required}\n");
	ck_assert_int_eq(cfg->nbd_tls, PORT_TLS_OPTIONAL);
	ck_assert_str_eq(cfg->nbd_tls_psk_file, "/etc/nvmfd/nbd.psk");
	ck_assert(cfg->host_conns[0].nbd_tls_required);
	config_free(cfg);
	EXPECT_ERR(HOST_HEAD "host:\n  nbd:\n    tls: maybe\n", 5, 10, "host.nbd.tls",
	    "must be off, optional or required");
	EXPECT_ERR(HOST_HEAD "host:\n  nbd:\n    tls: required\n", 5, 5,
	    "host.nbd.tls", "needs a tls_psk_file");
	EXPECT_ERR(HOST_HEAD "host:\n  nbd:\n    tls: optional\n"
	    "    tls_psk_file: nbd.psk\n", 6, 19, "host.nbd.tls_psk_file",
	    "absolute path");
	EXPECT_ERR(HOST_HEAD "host:\n  connections:\n    - {address: 127.0.0.1, "
	    "nqn: nqn.2026-11.io.nvmfd:t, nbd_tls: required}\n", 5, 7,
	    "host.connections[0].nbd_tls", "needs TLS on the NBD server");
	EXPECT_ERR(HOST_HEAD "host:\n  connections:\n    - {address: 127.0.0.1, "
	    "nqn: nqn.2026-11.io.nvmfd:t, nbd_tls: sometimes}\n", 5, 66,
	    "host.connections[0].nbd_tls", "invalid value");
}
END_TEST

START_TEST(test_example_conf)
{
	const char *top = getenv("top_srcdir");
	struct config *cfg;
	char path[4096];

	snprintf(path, sizeof(path), "%s/conf/nvmfd.yaml",
	    top != NULL ? top : ".");
	if (access(path, R_OK) != 0)
		snprintf(path, sizeof(path), "../../conf/nvmfd.yaml");
	cfg = config_load(path, errbuf, sizeof(errbuf));
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	ck_assert_ptr_nonnull(subsystem_find(cfg, NVMFD_DEFAULT_NQN));
	config_free(cfg);
}
END_TEST

/* --------------------------------------------------------------- errors */

START_TEST(test_err_unknown_keys)
{
	EXPECT_ERR("workers: 1\nworkerz: 2\n", 2, 1, "workerz",
	    "unknown key");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n    prot: 1\n", 3, 5,
	    "ports[0].prot", "unknown key");
	EXPECT_ERR(NS_HEAD "    nsq: 1\n", 6, 5, "subsystems[0].nsq",
	    "unknown key");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        sise: 1M\n", 8, 9, "subsystems[0].namespaces[0].sise",
	    "unknown key");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nreferrals:\n"
	    "  - address: 192.0.2.1\n    portid: 1\n", 5, 5,
	    "referrals[0].portid", "unknown key");
	/* Keys must be words, and appear once. */
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n? [a]\n: 1\n", 3, 3,
	    "(root)", "keys must be");
	EXPECT_ERR("workers: 1\nworkers: 2\n", 2, 1, "workers",
	    "duplicate key (first at line 1)");
}
END_TEST

START_TEST(test_err_types)
{
	EXPECT_ERR("workers: two\n", 1, 10, "workers",
	    "must be an integer, got \"two\"");
	EXPECT_ERR("workers: [1]\n", 1, 10, "workers",
	    "must be an integer, got a list");
	EXPECT_ERR("workers:\n", 1, 9, "workers",
	    "must be an integer, got nothing");
	EXPECT_ERR("ports: 1\n", 1, 8, "ports", "must be a list of ports");
	EXPECT_ERR("ports:\n  - 127.0.0.1\n", 2, 5, "ports[0]",
	    "must be a port (a mapping)");
	EXPECT_ERR("ports:\n  - address: {a: 1}\n", 2, 14, "ports[0].address",
	    "must be a string, got a mapping");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n    header_digest: maybe\n",
	    3, 20, "ports[0].header_digest", "must be true or false");
	EXPECT_ERR("ports:\n  - address: localhost\n", 2, 14,
	    "ports[0].address", "numeric IPv4 or IPv6");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems: {}\n", 3, 13,
	    "subsystems", "must be a list of subsystems");
	EXPECT_ERR(NS_HEAD "      - backend: ram\n        size: 1M\n"
	    "        readonly: 1\n", 8, 19,
	    "subsystems[0].namespaces[0].readonly", "must be true or false");
	EXPECT_ERR(NS_HEAD "      - backend: 7\n", 6, 18,
	    "subsystems[0].namespaces[0].backend",
	    "must be ram, file, block or rbd");
	EXPECT_ERR("- a\n- b\n", 1, 1, "(root)", "must be a mapping");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:t\n    hosts: nqn.2026-11.io.x:h\n",
	    5, 12, "subsystems[0].hosts", "must be \"any\" or a list");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:t\n    hosts: [[x]]\n",
	    5, 13, "subsystems[0].hosts[0]", "must be a host NQN");
}
END_TEST

START_TEST(test_err_ranges)
{
	EXPECT_ERR("workers: 1025\n", 1, 10, "workers",
	    "must be between 0 and 1024");
	EXPECT_ERR("workers: -1\n", 1, 10, "workers", "must be between");
	EXPECT_ERR("poll_us: 100001\n", 1, 10, "poll_us",
	    "must be between 0 and 100000");
	EXPECT_ERR("max_discovery_controllers: 0\n", 1, 28,
	    "max_discovery_controllers", "must be between 1 and 65519");
	EXPECT_ERR("max_controllers: 0\n", 1, 18, "max_controllers",
	    "must be between 1 and 65519");
	EXPECT_ERR("max_connections: 99999999999999999999999\n", 1, 18,
	    "max_connections", "must be between");
	EXPECT_ERR("mdts: 3M\n", 1, 7, "mdts", "power of two between 4K and 16M");
	EXPECT_ERR("mdts: 2K\n", 1, 7, "mdts", "power of two");
	EXPECT_ERR("mdts: 32M\n", 1, 7, "mdts", "power of two");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n    port: 0\n", 3, 11,
	    "ports[0].port", "must be between 1 and 65535");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n    port: 65536\n", 3, 11,
	    "ports[0].port", "must be between 1 and 65535");
	EXPECT_ERR("ports:\n  - id: 0\n    address: 127.0.0.1\n", 2, 9,
	    "ports[0].id", "must be between 1 and 65535");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n    inline_data_size: 100\n",
	    3, 23, "ports[0].inline_data_size", "multiple of 16");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n    inline_data_size: 256K\n",
	    3, 23, "ports[0].inline_data_size", "between 0 and 128K");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n    maxh2cdata: 2K\n",
	    3, 17, "ports[0].maxh2cdata", "between 4K and 16M");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n    maxh2cdata: 4098\n",
	    3, 17, "ports[0].maxh2cdata", "multiple of 4");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n    max_queue_depth: 1\n",
	    3, 22, "ports[0].max_queue_depth", "between 2 and 1024");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n    max_queue_depth: 1025\n",
	    3, 22, "ports[0].max_queue_depth", "between 2 and 1024");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:t\n    max_io_queues: 0\n",
	    5, 20, "subsystems[0].max_io_queues", "between 1 and 1024");
	EXPECT_ERR(NS_HEAD "      - nsid: 1025\n        backend: ram\n", 6, 15,
	    "subsystems[0].namespaces[0].nsid", "between 1 and 1024");
	EXPECT_ERR(NS_HEAD "      - nsid: 0\n        backend: ram\n", 6, 15,
	    "subsystems[0].namespaces[0].nsid", "between 1 and 1024");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nreferrals:\n"
	    "  - address: 192.0.2.1\n    port_id: 65536\n", 5, 14,
	    "referrals[0].port_id", "between 0 and 65535");
}
END_TEST

START_TEST(test_err_duplicates)
{
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:a\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:b\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:a\n", 6, 10, "subsystems[2].nqn",
	    "duplicate NQN, already used by the subsystem at line 4");
	EXPECT_ERR(NS_HEAD
	    "      - nsid: 3\n"
	    "        backend: ram\n"
	    "        size: 1M\n"
	    "      - nsid: 3\n"
	    "        backend: ram\n"
	    "        size: 1M\n", 9, 15, "subsystems[0].namespaces[1].nsid",
	    "NSID 3 is already used by the namespace at line 6");
	EXPECT_ERR("ports:\n"
	    "  - id: 2\n"
	    "    address: 127.0.0.1\n"
	    "  - id: 2\n"
	    "    address: 127.0.0.2\n", 4, 9, "ports[1].id",
	    "port id 2 is already used by the port at line 2");
	EXPECT_ERR("ports:\n"
	    "  - address: 127.0.0.1\n"
	    "    port: 4420\n"
	    "  - address: 127.0.0.1\n", 4, 14, "ports[1].address",
	    "127.0.0.1 port 4420 overlaps the port at line 2");
	/* A wildcard listener takes the port on every address. */
	EXPECT_ERR("ports:\n"
	    "  - address: 0.0.0.0\n"
	    "  - address: 10.0.0.1\n", 3, 14, "ports[1].address", "overlaps");
	EXPECT_ERR("ports:\n"
	    "  - address: \"::1\"\n"
	    "  - address: \"0:0::1\"\n", 3, 14, "ports[1].address", "overlaps");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:t\n"
	    "    hosts: [nqn.2026-11.io.x:h, nqn.2026-11.io.x:h]\n", 5, 33,
	    "subsystems[0].hosts[1]", "listed twice");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:t\n    ports: [1, 1]\n", 5, 16,
	    "subsystems[0].ports[1]", "listed twice");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nreferrals:\n"
	    "  - address: 192.0.2.1\n  - address: 192.0.2.1\n", 5, 14,
	    "referrals[1].address", "duplicate referral");
}
END_TEST

START_TEST(test_ok_distinct_ports)
{
	struct config *cfg;

	/* Same address on different ports, or different families: fine. */
	cfg = LOAD_OK("ports:\n"
	    "  - address: 127.0.0.1\n"
	    "  - address: 127.0.0.1\n"
	    "    port: 4421\n"
	    "  - address: \"::\"\n"
	    "  - address: 0.0.0.0\n"
	    "    port: 8009\n");
	ck_assert_uint_eq(port_find(cfg, 4)->id, 4);
	config_free(cfg);
}
END_TEST

START_TEST(test_err_port_refs)
{
	EXPECT_ERR("ports:\n  - id: 1\n    address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:t\n    ports: [1, 2]\n", 6, 16,
	    "subsystems[0].ports[1]", "no port with id 2 is defined");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:t\n    ports: []\n", 5, 12,
	    "subsystems[0].ports", "at least one port");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:t\n    ports: [x]\n", 5, 13,
	    "subsystems[0].ports[0]", "must be an integer");
	EXPECT_ERR("workers: 1\n", 1, 1, "ports", "is required");
	EXPECT_ERR("ports: []\n", 1, 8, "ports", "at least one port");
	EXPECT_ERR("ports:\n  - port: 4420\n", 2, 5, "ports[0].address",
	    "is required");
}
END_TEST

START_TEST(test_err_namespaces)
{
	/* Missing settings point at the namespace. */
	EXPECT_ERR(NS_HEAD "      - nsid: 1\n        size: 1G\n", 6, 9,
	    "subsystems[0].namespaces[0].backend", "is required");
	EXPECT_ERR(NS_HEAD "      - backend: ram\n        block_size: 512\n",
	    6, 9, "subsystems[0].namespaces[0].size",
	    "is required for a ram namespace");
	EXPECT_ERR(NS_HEAD "      - backend: file\n        size: 1G\n", 6, 9,
	    "subsystems[0].namespaces[0].path",
	    "is required for a file namespace");
	EXPECT_ERR(NS_HEAD "      - backend: block\n", 6, 9,
	    "subsystems[0].namespaces[0].path",
	    "is required for a block namespace");
	EXPECT_ERR(NS_HEAD "      - backend: disk\n", 6, 18,
	    "subsystems[0].namespaces[0].backend",
	    "must be ram, file, block or rbd, got \"disk\"");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1G\n"
	    "        block_size: 1024\n", 8, 21,
	    "subsystems[0].namespaces[0].block_size", "must be 512 or 4096");
	EXPECT_ERR(NS_HEAD
	    "      - backend: block\n"
	    "        path: /dev/sda\n"
	    "        block_size: 520\n", 8, 21,
	    "subsystems[0].namespaces[0].block_size", "must be 512 or 4096");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1000\n", 7, 15,
	    "subsystems[0].namespaces[0].size",
	    "must be a multiple of the block size (512)");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 0\n", 7, 15,
	    "subsystems[0].namespaces[0].size", "greater than 0");
	EXPECT_ERR(NS_HEAD
	    "      - backend: file\n"
	    "        path: disk.img\n", 7, 15,
	    "subsystems[0].namespaces[0].path", "absolute path");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        path: /x\n", 8, 9,
	    "subsystems[0].namespaces[0].path", "not allowed for a ram");
	EXPECT_ERR(NS_HEAD
	    "      - backend: block\n"
	    "        path: /dev/sda\n"
	    "        size: 1G\n", 8, 9,
	    "subsystems[0].namespaces[0].size", "not allowed for a block");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        direct: true\n", 8, 9,
	    "subsystems[0].namespaces[0].direct", "not allowed for a ram");
	EXPECT_ERR(NS_HEAD
	    "      - backend: file\n"
	    "        path: /x\n"
	    "        populate: lazy\n", 8, 9,
	    "subsystems[0].namespaces[0].populate", "only for a ram");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        populate: eager\n", 8, 19,
	    "subsystems[0].namespaces[0].populate", "background or lazy");
	EXPECT_ERR(NS_HEAD "      - 1\n", 6, 9, "subsystems[0].namespaces[0]",
	    "must be a namespace");
}
END_TEST

/* RBD namespaces: the keys are checked in every build; a build without
 * librbd refuses the backend itself, at its line and column. */
START_TEST(test_rbd)
{
	const char *top = getenv("top_srcdir");
	struct config *cfg;
	char path[4096];

	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        pool: rbd\n", 8, 9,
	    "subsystems[0].namespaces[0].pool", "only for an rbd namespace");
	snprintf(path, sizeof(path), "%s/conf/nvmfd-rbd.yaml",
	    top != NULL ? top : ".");
	if (access(path, R_OK) != 0)
		snprintf(path, sizeof(path), "../../conf/nvmfd-rbd.yaml");
	cfg = config_load(path, errbuf, sizeof(errbuf));
#ifdef HAVE_RBD
	EXPECT_ERR(NS_HEAD "      - backend: rbd\n        pool: rbd\n", 6, 9,
	    "subsystems[0].namespaces[0].image",
	    "is required for an rbd namespace");
	EXPECT_ERR(NS_HEAD
	    "      - backend: rbd\n"
	    "        pool: rbd\n"
	    "        image: a/b\n", 8, 16,
	    "subsystems[0].namespaces[0].image", "without '/'");
	EXPECT_ERR(NS_HEAD
	    "      - backend: rbd\n"
	    "        pool: rbd\n"
	    "        image: disk\n"
	    "        ceph_user: client.nvmfd\n", 9, 20,
	    "subsystems[0].namespaces[0].ceph_user", "without \"client.\"");
	EXPECT_ERR(NS_HEAD
	    "      - backend: rbd\n"
	    "        pool: rbd\n"
	    "        image: disk\n"
	    "        keyring: ceph.keyring\n", 9, 18,
	    "subsystems[0].namespaces[0].keyring", "absolute path");
	EXPECT_ERR(NS_HEAD
	    "      - backend: rbd\n"
	    "        pool: rbd\n"
	    "        image: disk\n"
	    "        size: 1G\n", 9, 9,
	    "subsystems[0].namespaces[0].size", "the image's size is used");
	EXPECT_ERR(NS_HEAD
	    "      - backend: rbd\n"
	    "        pool: rbd\n"
	    "        image: disk\n"
	    "        path: /dev/rbd0\n", 9, 9,
	    "subsystems[0].namespaces[0].path", "not allowed for a rbd");
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	{
		struct namespace *ns = first_ns(cfg);
		char img[128];

		ck_assert_int_eq(ns->type, BACKEND_RBD);
		ck_assert_ptr_nonnull(ns->rbd);
		rbd_spec_format(ns->rbd, img, sizeof(img));
		ck_assert_str_eq(img, "rbd/nvmf/disk0");
		ck_assert_str_eq(ns->rbd->user, "nvmfd");
		ck_assert_str_eq(ns->rbd->conf, "/etc/ceph/ceph.conf");
	}
	config_free(cfg);
#else
	ck_assert_ptr_null(cfg);
	ck_assert_msg(strstr(errbuf, "built without Ceph RBD support") != NULL,
	    "%s", errbuf);
#endif
}
END_TEST

START_TEST(test_err_ids)
{
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        uuid: 0b1d2c3e4f504a6b8c7d9e0f1a2b3c4d\n", 8, 15,
	    "subsystems[0].namespaces[0].uuid", "must be a UUID");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        uuid: 0b1d2c3e-4f50-4a6b-8c7d-9e0f1a2b3c4g\n", 8, 15,
	    "subsystems[0].namespaces[0].uuid", "must be a UUID");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        uuid: 00000000-0000-0000-0000-000000000000\n", 8, 15,
	    "subsystems[0].namespaces[0].uuid", "all zeros");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        nguid: 00112233445566778899aabbccddee\n", 8, 16,
	    "subsystems[0].namespaces[0].nguid", "32 hex digits");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        nguid: 00112233445566778899aabbccddeeff00\n", 8, 16,
	    "subsystems[0].namespaces[0].nguid", "32 hex digits");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        eui64: 0200000000000x01\n", 8, 16,
	    "subsystems[0].namespaces[0].eui64", "16 hex digits");
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        eui64: 0000000000000000\n", 8, 16,
	    "subsystems[0].namespaces[0].eui64", "all zeros");
	/* Explicit identifiers must be unique across subsystems. */
	EXPECT_ERR(NS_HEAD
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        eui64: 0200000000000001\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:u\n"
	    "    namespaces:\n"
	    "      - backend: ram\n"
	    "        size: 1M\n"
	    "        eui64: 02-00-00-00-00-00-00-01\n", 13, 16,
	    "subsystems[1].namespaces[0].eui64",
	    "already used by the namespace at line 6");
}
END_TEST

START_TEST(test_err_nqn)
{
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: iqn.2026-11.io.nvmfd:t\n", 4, 10, "subsystems[0].nqn",
	    "is not a valid NQN");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-13.io.nvmfd:t\n", 4, 10, "subsystems[0].nqn",
	    "is not a valid NQN");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2014-08.org.nvmexpress.discovery\n", 4, 10,
	    "subsystems[0].nqn", "reserved for the discovery");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - serial: x\n", 4, 5, "subsystems[0].nqn", "is required");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:t\n"
	    "    hosts:\n"
	    "      - nqn.2026-11.io.x:h\n"
	    "      - \"nqn.2026-11.io.x:with space\"\n", 7, 9,
	    "subsystems[0].hosts[1]", "is not a valid NQN");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:t\n"
	    "    serial: 012345678901234567890\n", 5, 13,
	    "subsystems[0].serial", "longer than 20");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\nsubsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:t\n"
	    "    model: \"\"\n", 5, 12, "subsystems[0].model", "not be empty");
}
END_TEST

/* ------------------------------------------------------- DH-HMAC-CHAP */

/* config_write()'s text, malloc'd. */
static char *
written(struct config *cfg, bool secrets)
{
	char *yaml;
	size_t len;
	FILE *fp = open_memstream(&yaml, &len);

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(config_write(cfg, fp, secrets), 0);
	fclose(fp);
	return (yaml);
}

#define KEY_A	"DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:"
#define KEY_BAD	"DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:"
#define AUTH_HEAD \
	"ports:\n" \
	"  - address: 127.0.0.1\n" \
	"    dhchap_dhgroups: [ffdhe2048, null]\n" \
	"subsystems:\n" \
	"  - nqn: nqn.2026-11.io.nvmfd:t\n" \
	"    dhchap_hashes: [sha512, sha256]\n" \
	"    hosts:\n" \
	"      - nqn.2026-11.io.x:plain\n"

START_TEST(test_dhchap)
{
	char *keyfile = write_tmp(KEY_A "\n"), *text, *yaml, *saved = NULL;
	struct config *cfg, *again;
	struct subsystem *s;
	struct host *h;

	ck_assert_int_eq(chmod(keyfile, 0600), 0);
	ck_assert_int_ne(asprintf(&text, AUTH_HEAD
	    "      - nqn: nqn.2026-11.io.x:a\n"
	    "        dhchap_secret: \"%s\"\n"
	    "        dhchap_ctrl_secret: \"@%s\"\n", KEY_A, keyfile), -1);
	cfg = LOAD_OK(text);
	s = first_subsys(cfg);
	ck_assert_uint_eq(s->dhchap.nhashes, 2);
	ck_assert_uint_eq(s->dhchap.hashes[0], DHCHAP_SHA512);
	ck_assert_uint_eq(TAILQ_FIRST(&cfg->ports)->dhchap.ngroups, 2);
	ck_assert_uint_eq(TAILQ_FIRST(&cfg->ports)->dhchap.groups[1],
	    DHCHAP_NULL);
	ck_assert_uint_eq(host_find(s, "nqn.2026-11.io.x:plain")->key.len, 0);
	h = host_find(s, "nqn.2026-11.io.x:a");
	ck_assert_uint_eq(h->key.len, 32);
	ck_assert_uint_eq(h->ctrl_key.len, 32);
	ck_assert(config_has_inline_secrets(cfg));

	/* Hidden unless asked for; the key file is only named. */
	yaml = written(cfg, false);
	ck_assert_ptr_null(strstr(yaml, "AAECAw"));
	ck_assert_ptr_nonnull(strstr(yaml, keyfile));
	ck_assert_ptr_nonnull(strstr(yaml, "# dhchap_secret: hidden"));
	free(yaml);
	/* With them, the file loads back to the same keys and offers. */
	saved = written(cfg, true);
	again = LOAD_OK(saved);
	s = first_subsys(again);
	h = host_find(s, "nqn.2026-11.io.x:a");
	ck_assert_mem_eq(&h->key, &host_find(first_subsys(cfg),
	    "nqn.2026-11.io.x:a")->key, sizeof(h->key));
	ck_assert_str_eq(h->dhchap_ctrl_secret + 1, keyfile);
	ck_assert_uint_eq(s->dhchap.hashes[1], DHCHAP_SHA256);
	ck_assert_uint_eq(TAILQ_FIRST(&again->ports)->dhchap.ngroups, 2);
	config_free(again);
	config_free(cfg);
	free(saved);
	free(text);

	/* A key file others may read is refused, naming file and mode. */
	ck_assert_int_eq(chmod(keyfile, 0644), 0);
	ck_assert_int_ne(asprintf(&text, AUTH_HEAD
	    "      - nqn: nqn.2026-11.io.x:a\n"
	    "        dhchap_secret: \"@%s\"\n", keyfile), -1);
	EXPECT_ERR(text, 10, 24, "subsystems[0].hosts[1].dhchap_secret",
	    "mode 0644");
	ck_assert_ptr_nonnull(strstr(errbuf, keyfile));
	free(text);
	unlink(keyfile);
	free(keyfile);

	EXPECT_ERR(AUTH_HEAD "      - nqn: nqn.2026-11.io.x:a\n"
	    "        dhchap_secret: \"" KEY_BAD "\"\n", 10, 24,
	    "subsystems[0].hosts[1].dhchap_secret", "CRC-32");
	EXPECT_ERR(AUTH_HEAD "      - nqn: nqn.2026-11.io.x:a\n"
	    "        dhchap_ctrl_secret: \"" KEY_A "\"\n", 10, 9,
	    "subsystems[0].hosts[1].dhchap_ctrl_secret", "needs dhchap_secret");
	EXPECT_ERR(AUTH_HEAD "      - dhchap_secret: \"" KEY_A "\"\n", 9, 9,
	    "subsystems[0].hosts[1].nqn", "is required");
	EXPECT_ERR(AUTH_HEAD "      - nqn: nqn.2026-11.io.x:a\n"
	    "        dhchap_secret: \"@relative\"\n", 10, 24,
	    "subsystems[0].hosts[1].dhchap_secret", "absolute");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n"
	    "    dhchap_hashes: [sha1]\n", 3, 21,
	    "ports[0].dhchap_hashes[0]", "sha256, sha384 or sha512");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n"
	    "    dhchap_dhgroups: [ffdhe2048, ffdhe2048]\n", 3, 34,
	    "ports[0].dhchap_dhgroups[1]", "listed twice");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n"
	    "    dhchap_dhgroups: []\n", 3, 22,
	    "ports[0].dhchap_dhgroups", "at least one");
}
END_TEST

/* The discovery section: open by default, hosts with keys, offers; saved
 * only when it says something, secrets hidden unless asked for. */
#define DISC_HEAD \
	"ports:\n" \
	"  - address: 127.0.0.1\n" \
	"discovery:\n"

START_TEST(test_discovery)
{
	char *yaml, *saved;
	struct config *cfg, *again;
	struct discovery_access *d;
	struct host *h;

	cfg = LOAD_OK("ports:\n  - address: 127.0.0.1\n");
	ck_assert(cfg->discovery.allow_any_host);
	ck_assert(TAILQ_EMPTY(&cfg->discovery.hosts));
	ck_assert(discovery_host_allowed(cfg, "nqn.2026-11.io.x:any", NULL));
	yaml = written(cfg, false);
	ck_assert_ptr_null(strstr(yaml, "discovery:"));
	free(yaml);
	config_free(cfg);

	cfg = LOAD_OK(DISC_HEAD
	    "  dhchap_hashes: [sha384]\n"
	    "  dhchap_dhgroups: [ffdhe3072, null]\n"
	    "  hosts:\n"
	    "    - nqn.2026-11.io.x:plain\n"
	    "    - nqn: nqn.2026-11.io.x:a\n"
	    "      dhchap_secret: \"" KEY_A "\"\n"
	    "      dhchap_ctrl_secret: \"" KEY_A "\"\n"
	    "      from: 10.0.0.0/8\n");
	d = &cfg->discovery;
	ck_assert(d->allow_any_host);	/* listing keys shuts nobody out */
	ck_assert_uint_eq(d->dhchap.nhashes, 1);
	ck_assert_uint_eq(d->dhchap.hashes[0], DHCHAP_SHA384);
	ck_assert_uint_eq(d->dhchap.ngroups, 2);
	ck_assert_uint_eq(d->dhchap.groups[1], DHCHAP_NULL);
	ck_assert_uint_eq(discovery_host_find(cfg,
	    "nqn.2026-11.io.x:plain")->key.len, 0);
	h = discovery_host_find(cfg, "nqn.2026-11.io.x:a");
	ck_assert_uint_eq(h->key.len, 32);
	ck_assert_uint_eq(h->ctrl_key.len, 32);
	ck_assert_ptr_null(discovery_host_find(cfg, "nqn.2026-11.io.x:b"));
	ck_assert(discovery_host_allowed(cfg, "nqn.2026-11.io.x:b", NULL));
	ck_assert(config_has_inline_secrets(cfg));
	/* No subsystem lists the host: discovery's hosts are their own. */
	ck_assert(TAILQ_EMPTY(&cfg->subsystems));

	yaml = written(cfg, false);
	ck_assert_ptr_null(strstr(yaml, "AAECAw"));
	ck_assert_ptr_nonnull(strstr(yaml, "discovery:\n"
	    "  allow_any_host: true\n"));
	ck_assert_ptr_nonnull(strstr(yaml, "      # dhchap_secret: hidden"));
	ck_assert_ptr_nonnull(strstr(yaml,
	    "      # dhchap_ctrl_secret: hidden"));
	free(yaml);
	saved = written(cfg, true);
	again = LOAD_OK(saved);
	d = &again->discovery;
	ck_assert(d->allow_any_host);
	ck_assert_mem_eq(&d->dhchap, &cfg->discovery.dhchap, sizeof(d->dhchap));
	h = discovery_host_find(again, "nqn.2026-11.io.x:a");
	ck_assert_ptr_nonnull(h);
	ck_assert_mem_eq(&h->key, &discovery_host_find(cfg,
	    "nqn.2026-11.io.x:a")->key, sizeof(h->key));
	ck_assert_uint_eq(h->ctrl_key.len, 32);
	ck_assert_uint_eq(h->nfrom, 1);
	ck_assert_ptr_nonnull(discovery_host_find(again,
	    "nqn.2026-11.io.x:plain"));
	config_free(again);
	config_free(cfg);
	free(saved);

	/* Restricted: only listed hosts, from where they may connect. */
	cfg = LOAD_OK(DISC_HEAD
	    "  allow_any_host: false\n"
	    "  hosts:\n"
	    "    - nqn: nqn.2026-11.io.x:a\n"
	    "      dhchap_secret: \"" KEY_A "\"\n");
	ck_assert(!cfg->discovery.allow_any_host);
	ck_assert(discovery_host_allowed(cfg, "nqn.2026-11.io.x:a", NULL));
	ck_assert(!discovery_host_allowed(cfg, "nqn.2026-11.io.x:b", NULL));
	ck_assert(!discovery_host_allowed(cfg, NULL, NULL));
	saved = written(cfg, false);
	ck_assert_ptr_nonnull(strstr(saved, "  allow_any_host: false\n"));
	free(saved);
	config_free(cfg);

	/* Errors name file:line:column and the key. */
	EXPECT_ERR(DISC_HEAD "  hosts: any\n", 4, 10, "discovery.hosts",
	    "allow_any_host");
	EXPECT_ERR(DISC_HEAD "  allow_any_host: maybe\n", 4, 19,
	    "discovery.allow_any_host", "true or false");
	EXPECT_ERR(DISC_HEAD "  host: []\n", 4, 3, "discovery.host",
	    "unknown key");
	EXPECT_ERR(DISC_HEAD "  hosts:\n    - nqn: nqn.2026-11.io.x:a\n"
	    "      dhchap_secret: \"" KEY_BAD "\"\n", 6, 22,
	    "discovery.hosts[0].dhchap_secret", "CRC-32");
	EXPECT_ERR(DISC_HEAD "  hosts:\n    - nqn: nqn.2026-11.io.x:a\n"
	    "      dhchap_ctrl_secret: \"" KEY_A "\"\n", 6, 7,
	    "discovery.hosts[0].dhchap_ctrl_secret", "needs dhchap_secret");
	EXPECT_ERR(DISC_HEAD "  hosts:\n    - nqn.2026-11.io.x:a\n"
	    "    - nqn: nqn.2026-11.io.x:a\n", 6, 12, "discovery.hosts[1].nqn",
	    "listed twice");
	EXPECT_ERR(DISC_HEAD "  hosts:\n    - not-an-nqn\n", 5, 7,
	    "discovery.hosts[0]", "not a valid NQN");
	EXPECT_ERR(DISC_HEAD "  dhchap_hashes: [md5]\n", 4, 19,
	    "discovery.dhchap_hashes[0]", "sha256, sha384 or sha512");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\ndiscovery: []\n", 3, 12,
	    "discovery", "a mapping");
}
END_TEST

START_TEST(test_err_yaml)
{
	/* A tab where indentation is expected. */
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n\tport: 1\n", 3, 1, "yaml",
	    "tab");
	EXPECT_ERR("ports: [\n", 2, 1, "yaml", NULL);
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n   port: 1\n", 3, 4,
	    "yaml", "did not find expected");
	EXPECT_ERR("workers: \"1\n", 2, 1, "yaml", "quoted scalar");
	EXPECT_ERR("ports:\n  - address: 127.0.0.1\n---\nworkers: 1\n", 3, 1,
	    "yaml", "only one document");
	EXPECT_ERR("", 1, 1, "(root)", "empty");
	EXPECT_ERR("# only a comment\n", 1, 1, "(root)", "empty");
	EXPECT_ERR("workers: \"\xff\"\n", 1, 11, "yaml", "UTF-8");
	EXPECT_ERR("workers: *nope\n", 1, 10, "yaml", "undefined alias");
}
END_TEST

START_TEST(test_err_open)
{
	char *path = write_tmp("");
	char want[512];

	unlink(path);
	ck_assert_ptr_null(config_load(path, errbuf, sizeof(errbuf)));
	snprintf(want, sizeof(want), "%s: ", path);
	ck_assert_msg(strncmp(errbuf, want, strlen(want)) == 0, "%s", errbuf);
	free(path);
	/* NULL error buffer is tolerated. */
	ck_assert_ptr_null(config_load("/nonexistent/nvmfd.yaml", NULL, 0));
}
END_TEST

/* ---------------------------------------------------------------- sizes */

START_TEST(test_sizes)
{
	static const struct {
		const char	*text;
		uint64_t	 bytes;
	} ok[] = {
		{ "4096", 4096 }, { "1K", 1024 }, { "1k", 1024 },
		{ "1KiB", 1024 }, { "3M", 3 << 20 }, { "3MiB", 3 << 20 },
		{ "2G", 2ULL << 30 }, { "2gib", 2ULL << 30 },
		{ "1 G", 1ULL << 30 }, { "5T", 5ULL << 40 },
		{ "5TiB", 5ULL << 40 }, { "\"64M\"", 64 << 20 },
	};
	static const char *const bad[] = {
		"1.5G", "1X", "G", "1KB", "1Gi", "1GiBB", "0x100", "-1M",
		"\"\"", "[1]", "1 G B",
	};
	struct config *cfg;
	char yaml[512];
	size_t i;

	for (i = 0; i < nitems(ok); i++) {
		snprintf(yaml, sizeof(yaml), NS_HEAD
		    "      - backend: ram\n        size: %s\n", ok[i].text);
		cfg = LOAD_OK(yaml);
		ck_assert_msg(first_ns(cfg)->size == ok[i].bytes,
		    "%s gave %llu", ok[i].text,
		    (unsigned long long)first_ns(cfg)->size);
		config_free(cfg);
	}
	for (i = 0; i < nitems(bad); i++) {
		snprintf(yaml, sizeof(yaml), NS_HEAD
		    "      - backend: ram\n        size: %s\n", bad[i]);
		EXPECT_ERR(yaml, 7, 15, "subsystems[0].namespaces[0].size",
		    "must be a size like 1G or 512M");
	}
	EXPECT_ERR(NS_HEAD "      - backend: ram\n        size: 16777216T\n",
	    7, 15, "subsystems[0].namespaces[0].size", "too large");
	EXPECT_ERR(NS_HEAD "      - backend: ram\n"
	    "        size: 99999999999999999999999\n",
	    7, 15, "subsystems[0].namespaces[0].size", "too large");
	/* Sizes in other keys: block_size accepts 4K. */
	cfg = LOAD_OK(NS_HEAD "      - backend: ram\n        size: 8K\n"
	    "        block_size: 4K\n");
	ck_assert_uint_eq(first_ns(cfg)->block_size, 4096);
	config_free(cfg);
}
END_TEST

/* ----------------------------------------------------------- derived IDs */

static const char two_ns_yaml[] = NS_HEAD
    "      - backend: ram\n"
    "        size: 1M\n"
    "      - backend: ram\n"
    "        size: 1M\n";

START_TEST(test_derived_ids)
{
	struct config *a, *b;
	struct namespace *a1, *a2, *b1;

	a = LOAD_OK(two_ns_yaml);
	b = LOAD_OK(two_ns_yaml);
	a1 = first_ns(a);
	a2 = TAILQ_NEXT(a1, entry);
	b1 = first_ns(b);
	ck_assert_uint_eq(a1->nsid, 1);
	ck_assert_uint_eq(a2->nsid, 2);

	/* Stable across loads. */
	ck_assert(a1->has_uuid && a1->has_nguid && a1->has_eui64);
	ck_assert_mem_eq(a1->uuid, b1->uuid, 16);
	ck_assert_mem_eq(a1->nguid, b1->nguid, 16);
	ck_assert_mem_eq(a1->eui64, b1->eui64, 8);
	ck_assert_str_eq(first_subsys(a)->serial, first_subsys(b)->serial);

	/* Different across NSIDs. */
	ck_assert(memcmp(a1->uuid, a2->uuid, 16) != 0);
	ck_assert(memcmp(a1->nguid, a2->nguid, 16) != 0);
	ck_assert(memcmp(a1->eui64, a2->eui64, 8) != 0);

	/* Version 5 / RFC 4122 variant; EUI-64 locally administered unicast. */
	ck_assert_uint_eq(a1->uuid[6] >> 4, 5);
	ck_assert_uint_eq(a1->uuid[8] & 0xc0, 0x80);
	ck_assert_uint_eq(a1->eui64[0] & 0x03, 0x02);
	ck_assert(memcmp(a1->uuid, a1->nguid, 16) != 0);
	config_free(a);
	config_free(b);
}
END_TEST

START_TEST(test_derive_direct)
{
	struct subsystem s1, s2;
	struct namespace n1, n2, n3;
	static const uint8_t given[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	size_t i;

	memset(&s1, 0, sizeof(s1));
	memset(&s2, 0, sizeof(s2));
	snprintf(s1.nqn, sizeof(s1.nqn), "nqn.2026-11.io.nvmfd:a");
	snprintf(s2.nqn, sizeof(s2.nqn), "nqn.2026-11.io.nvmfd:b");
	memset(&n1, 0, sizeof(n1));
	memset(&n2, 0, sizeof(n2));
	memset(&n3, 0, sizeof(n3));
	n1.subsys = &s1;
	n1.nsid = 1;
	n2.subsys = &s2;
	n2.nsid = 1;
	n3.subsys = &s1;
	n3.nsid = 1;
	memcpy(n3.eui64, given, 8);
	n3.has_eui64 = true;
	namespace_derive_ids(&n1);
	namespace_derive_ids(&n2);
	namespace_derive_ids(&n3);
	/* Different subsystems, different IDs. */
	ck_assert(memcmp(n1.uuid, n2.uuid, 16) != 0);
	ck_assert(memcmp(n1.eui64, n2.eui64, 8) != 0);
	/* Given IDs are kept; the others match the same NQN/NSID. */
	ck_assert_mem_eq(n3.eui64, given, 8);
	ck_assert_mem_eq(n3.uuid, n1.uuid, 16);
	ck_assert_mem_eq(n3.nguid, n1.nguid, 16);
	namespace_derive_ids(NULL);

	subsystem_derive_serial(&s1);
	subsystem_derive_serial(&s2);
	ck_assert_uint_eq(strlen(s1.serial), 20);
	for (i = 0; i < 20; i++)
		ck_assert(strchr("0123456789abcdef", s1.serial[i]) != NULL);
	ck_assert_str_ne(s1.serial, s2.serial);
}
END_TEST

/* ------------------------------------------------------ ANA, CNTLIDs */

#define ANA_HEAD \
	"ports:\n" \
	"  - {id: 1, address: 127.0.0.1}\n" \
	"  - {id: 2, address: 127.0.0.2}\n" \
	"subsystems:\n" \
	"  - nqn: nqn.2026-11.io.nvmfd:t\n"

START_TEST(test_ana)
{
	struct config *cfg;
	struct subsystem *s;

	cfg = LOAD_OK("cntlid_min: 10\ncntlid_max: 20\n" ANA_HEAD
	    "    cntlid_min: 500\n    cntlid_max: 500\n"
	    "    ana:\n"
	    "      - {group: 2, port: 2, state: inaccessible}\n"
	    "      - {group: 32, port: 1, state: change}\n"
	    "      - {group: 1, port: 1, state: optimized}\n"
	    "    namespaces:\n"
	    "      - {backend: ram, size: 1M}\n"
	    "      - {backend: ram, size: 1M, ana_group: 2}\n");
	s = first_subsys(cfg);
	ck_assert_uint_eq(cfg->cntlid_min, 10);
	ck_assert_uint_eq(cfg->cntlid_max, 20);
	ck_assert_uint_eq(s->cntlid_min, 500);
	ck_assert_uint_eq(s->cntlid_max, 500);
	ck_assert_uint_eq(ana_state(&s->ana, 2, 2), ANA_INACCESSIBLE);
	ck_assert_uint_eq(ana_state(&s->ana, 2, 1), ANA_OPTIMIZED);
	ck_assert_uint_eq(ana_state(&s->ana, 32, 1), ANA_CHANGE);
	ck_assert_uint_eq(TAILQ_FIRST(&s->namespaces)->anagrpid, 1);
	ck_assert_uint_eq(TAILQ_LAST(&s->namespaces, namespace_list)->anagrpid,
	    2);
	config_free(cfg);
	/* One global bound keeps the default of the other. */
	cfg = LOAD_OK("cntlid_max: 7\n" ANA_HEAD);
	ck_assert_uint_eq(cfg->cntlid_min, 1);
	ck_assert_uint_eq(cfg->cntlid_max, 7);
	ck_assert_uint_eq(first_subsys(cfg)->cntlid_min, 0);
	config_free(cfg);

	EXPECT_ERR("cntlid_min: 8\ncntlid_max: 7\n" ANA_HEAD, 2, 13,
	    "cntlid_max", "is below cntlid_min (8)");
	EXPECT_ERR("cntlid_min: 65520\n" ANA_HEAD, 1, 13, "cntlid_min",
	    "between 1 and 65519");
	EXPECT_ERR(ANA_HEAD "    cntlid_min: 5\n", 5, 5,
	    "subsystems[0].cntlid_max", "is required with cntlid_min");
	EXPECT_ERR(ANA_HEAD "    ana:\n      - {group: 0, port: 1, "
	    "state: change}\n", 7, 17, "subsystems[0].ana[0].group",
	    "between 1 and 32");
	EXPECT_ERR(ANA_HEAD "    ana:\n      - {group: 1, port: 3, "
	    "state: change}\n", 7, 26, "subsystems[0].ana[0].port",
	    "no port with id 3");
	EXPECT_ERR(ANA_HEAD "    ana:\n      - {group: 1, port: 1, "
	    "state: Optimized}\n", 7, 36, "subsystems[0].ana[0].state",
	    "must be optimized, non-optimized");
	EXPECT_ERR(ANA_HEAD "    ana:\n      - {group: 1, port: 1}\n", 7, 9,
	    "subsystems[0].ana[0].state", "is required");
	EXPECT_ERR(ANA_HEAD "    ana:\n"
	    "      - {group: 1, port: 1, state: change}\n"
	    "      - {group: 1, port: 1, state: inaccessible}\n", 8, 17,
	    "subsystems[0].ana[1].group", "listed twice");
	EXPECT_ERR(ANA_HEAD "    ana: [1]\n", 6, 11, "subsystems[0].ana[0]",
	    "must be an ANA state (a mapping)");
	EXPECT_ERR(ANA_HEAD "    namespaces:\n"
	    "      - {backend: ram, size: 1M, ana_group: 33}\n", 7, 45,
	    "subsystems[0].namespaces[0].ana_group", "between 1 and 32");
}
END_TEST

/* ------------------------------------------------------------------ NQN */

START_TEST(test_nqn_valid)
{
	static const char *const good[] = {
		"nqn.2026-11.io.nvmfd:ram0",
		"nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-1111-2222-3333-444455556666",
		"nqn.2014-08.org.nvmexpress:uuid:ABCDEF01-1111-2222-3333-444455556666",
		"nqn.2014-08.org.nvmexpress.discovery",
		"nqn.2000-01.com.example:a:b:c",
		"nqn.1999-12.x:y",
		"nqn.2026-11.my-domain.example:disk_0/part.1",
	};
	static const char *const bad[] = {
		"",
		"nqn",
		"nqn.",
		"iqn.2026-11.io.nvmfd:ram0",
		"NQN.2026-11.io.nvmfd:ram0",
		"nqn.26-11.io.nvmfd:ram0",
		"nqn.2026-1.io.nvmfd:ram0",
		"nqn.2026-00.io.nvmfd:ram0",
		"nqn.2026-13.io.nvmfd:ram0",
		"nqn.2026_11.io.nvmfd:ram0",
		"nqn.2026-11io.nvmfd:ram0",
		"nqn.2026-11.io.nvmfd",
		"nqn.2026-11.io.nvmfd:",
		"nqn.2026-11.:ram0",
		"nqn.2026-11..io:ram0",
		"nqn.2026-11.io.:ram0",
		"nqn.2026-11.io..nvmfd:ram0",
		"nqn.2026-11.io_x:ram0",
		"nqn.2026-11.io.nvmfd:ram 0",
		"nqn.2026-11.io.nvmfd:ram\t0",
		"nqn.2026-11.io.nvmfd:r\xc3\xa4m",
		"nqn.2014-08.org.nvmexpress:uuid:",
		"nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-1111-2222-3333-44445555666",
		"nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-1111-2222-3333-4444555566667",
		"nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b11112222-3333-444455556666",
		"nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-1111-2222-3333-44445555666g",
	};
	char longnqn[NVMFD_NQN_MAX + 2];
	size_t i;

	for (i = 0; i < nitems(good); i++)
		ck_assert_msg(nqn_valid(good[i]), "%s", good[i]);
	for (i = 0; i < nitems(bad); i++)
		ck_assert_msg(!nqn_valid(bad[i]), "%s", bad[i]);
	ck_assert(!nqn_valid(NULL));

	/* 223 characters is the limit. */
	memset(longnqn, 'a', sizeof(longnqn));
	memcpy(longnqn, "nqn.2026-11.io.nvmfd:", 21);
	longnqn[NVMFD_NQN_MAX] = '\0';
	ck_assert(nqn_valid(longnqn));
	longnqn[NVMFD_NQN_MAX] = 'a';
	longnqn[NVMFD_NQN_MAX + 1] = '\0';
	ck_assert(!nqn_valid(longnqn));
}
END_TEST

START_TEST(test_lookups_null)
{
	ck_assert_ptr_null(subsystem_find(NULL, "x"));
	ck_assert_ptr_null(namespace_find(NULL, 1));
	ck_assert_ptr_null(port_find(NULL, 1));
	ck_assert(!subsystem_host_allowed(NULL, "x", NULL));
	ck_assert(!subsystem_on_port(NULL, NULL));
}
END_TEST

/* ----------------------------------------------------------------- TLS */

#define TLS_KEY	"NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"
#define TLS_HEAD \
	"ports:\n" \
	"  - {address: 127.0.0.1, tls: required}\n" \
	"  - {address: 127.0.0.1, port: 4421, tls: optional}\n" \
	"  - {address: 127.0.0.1, port: 4422}\n" \
	"subsystems:\n" \
	"  - nqn: nqn.2026-11.io.nvmfd:t\n" \
	"    hosts:\n"

START_TEST(test_tls)
{
	struct config *cfg;
	struct subsystem *ss;
	struct port *p;
	struct host *h;
	char *path, text[1024];

	cfg = LOAD_OK(TLS_HEAD
	    "      - nqn.2026-11.io.example:plain\n"
	    "      - nqn: nqn.2026-11.io.example:h1\n"
	    "        tls_key: '" TLS_KEY "'\n"
	    "      - {nqn: nqn.2026-11.io.example:h2, tls_key: '" TLS_KEY "',"
	    " tls_kdf: rfc8446}\n");
	p = TAILQ_FIRST(&cfg->ports);
	ck_assert_int_eq(p->tls, PORT_TLS_REQUIRED);
	ck_assert_int_eq(TAILQ_NEXT(p, entry)->tls, PORT_TLS_OPTIONAL);
	ck_assert_int_eq(TAILQ_LAST(&cfg->ports, port_list)->tls, PORT_TLS_OFF);
	ss = first_subsys(cfg);
	h = TAILQ_FIRST(&ss->hosts);
	ck_assert_ptr_null(h->tls);
	h = TAILQ_NEXT(h, entry);
	ck_assert_ptr_nonnull(h->tls);
	ck_assert_str_eq(host_tls_kdf_name(h->tls), "compat");
	ck_assert_str_eq(host_tls_kdf_name(TAILQ_NEXT(h, entry)->tls),
	    "rfc8446");
	ck_assert_ptr_eq(host_tls_find(cfg, ss->nqn,
	    "nqn.2026-11.io.example:h1"), h->tls);
	ck_assert_ptr_eq(host_tls_find(cfg, NVMF_DISCOVERY_NQN,
	    "nqn.2026-11.io.example:h1"), h->tls);
	ck_assert_ptr_null(host_tls_find(cfg, ss->nqn,
	    "nqn.2026-11.io.example:plain"));
	ck_assert_ptr_null(host_tls_find(cfg, "nqn.2026-11.io.nvmfd:other",
	    "nqn.2026-11.io.example:h1"));
	config_free(cfg);

	EXPECT_ERR("ports:\n  - {address: 127.0.0.1, tls: maybe}\n", 2, 31,
	    "ports[0].tls", "must be off, optional or required");
	EXPECT_ERR(TLS_HEAD "      - {nqn: nqn.2026-11.io.example:h1, tls_key: "
	    "'NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwJf9LrZ:'}\n",
	    8, 51, "subsystems[0].hosts[0].tls_key", "CRC-32");
	EXPECT_ERR(TLS_HEAD "      - {nqn: nqn.2026-11.io.example:h1, tls_kdf: "
	    "compat}\n", 8, 51, "subsystems[0].hosts[0].tls_kdf",
	    "needs a tls_key");
	EXPECT_ERR(TLS_HEAD "      - {nqn: nqn.2026-11.io.example:h1, key: x}\n",
	    8, 42, "subsystems[0].hosts[0].key", "unknown key");
	EXPECT_ERR(TLS_HEAD "      - {tls_key: '" TLS_KEY "'}\n", 8, 9,
	    "subsystems[0].hosts[0].nqn", "is required");

	/* Key files: only the owner may read them, and the key in them is
	 * checked like an inline one. */
	path = write_tmp(TLS_KEY "\n");
	ck_assert_int_eq(chmod(path, 0600), 0);
	snprintf(text, sizeof(text), TLS_HEAD
	    "      - {nqn: nqn.2026-11.io.example:h1, tls_key: '@%s'}\n", path);
	cfg = LOAD_OK(text);
	h = TAILQ_FIRST(&first_subsys(cfg)->hosts);
	ck_assert_ptr_nonnull(h->tls);
	ck_assert_str_eq(host_tls_spec(h->tls) + 1, path);
	config_free(cfg);
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_ptr_null(load_text(text));
	ck_assert_msg(strstr(errbuf, "mode 0640") != NULL, "%s", errbuf);
	ck_assert_msg(strstr(errbuf, path) != NULL, "%s", errbuf);
	unlink(path);
	free(path);
	ck_assert_ptr_null(load_text(text));
	ck_assert_msg(strstr(errbuf, "No such file") != NULL, "%s", errbuf);
}
END_TEST

/* An allowed host bound to address prefixes (from:). */
static struct sockaddr *
sa(const char *addr, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr,
	    &((struct sockaddr_in *)ss)->sin_addr) == 1)
		ss->ss_family = AF_INET;
	else {
		ck_assert(inet_pton(AF_INET6, addr,
		    &((struct sockaddr_in6 *)ss)->sin6_addr) == 1);
		ss->ss_family = AF_INET6;
	}
	return ((struct sockaddr *)ss);
}

START_TEST(test_host_from)
{
	struct config *cfg = LOAD_OK(
	    "ports:\n"
	    "  - address: 127.0.0.1\n"
	    "subsystems:\n"
	    "  - nqn: nqn.2026-11.io.nvmfd:from\n"
	    "    hosts:\n"
	    "      - nqn: nqn.2026-11.io.example:a\n"
	    "        from: [10.1.0.0/16, \"fd00::/8\", 192.0.2.7]\n"
	    "      - nqn: nqn.2026-11.io.example:b\n"
	    "        from: 127.0.0.2/32\n");
	struct subsystem *s = first_subsys(cfg);
	const char *a = "nqn.2026-11.io.example:a";
	struct sockaddr_storage ss;

	ck_assert(subsystem_host_allowed(s, a, sa("10.1.200.3", &ss)));
	ck_assert(!subsystem_host_allowed(s, a, sa("10.2.0.1", &ss)));
	ck_assert(subsystem_host_allowed(s, a, sa("::ffff:10.1.0.9", &ss)));
	ck_assert(subsystem_host_allowed(s, a, sa("fd12::1", &ss)));
	ck_assert(!subsystem_host_allowed(s, a, sa("fe80::1", &ss)));
	ck_assert(subsystem_host_allowed(s, a, sa("192.0.2.7", &ss)));
	ck_assert(!subsystem_host_allowed(s, a, sa("192.0.2.8", &ss)));
	ck_assert(!subsystem_host_allowed(s, a, NULL));
	ck_assert(subsystem_host_allowed(s, "nqn.2026-11.io.example:b",
	    sa("127.0.0.2", &ss)));
	ck_assert(!subsystem_host_allowed(s, "nqn.2026-11.io.example:b",
	    sa("127.0.0.1", &ss)));
	config_free(cfg);

#define FROM_HEAD \
	"ports:\n" \
	"  - address: 127.0.0.1\n" \
	"subsystems:\n" \
	"  - nqn: nqn.2026-11.io.nvmfd:from\n" \
	"    hosts:\n" \
	"      - nqn: nqn.2026-11.io.example:a\n"
	EXPECT_ERR(FROM_HEAD "        from: 10.1.0.1/16\n", 7, 15,
	    "subsystems[0].hosts[0].from", "no host bits");
	EXPECT_ERR(FROM_HEAD "        from: [10.0.0.0/8, 300.1.1.1]\n", 7, 28,
	    "subsystems[0].hosts[0].from", "numeric address");
	EXPECT_ERR(FROM_HEAD "        from: 10.0.0.0/33\n", 7, 15,
	    "subsystems[0].hosts[0].from", NULL);
	EXPECT_ERR(FROM_HEAD "        from: []\n", 7, 15,
	    "subsystems[0].hosts[0].from", "1 to 64");
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("load");
	tcase_add_test(tc, test_default);
	tcase_add_test(tc, test_rbd);
	tcase_add_test(tc, test_minimal_defaults);
	tcase_add_test(tc, test_poll_off);
	tcase_add_test(tc, test_state_dir);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_example_conf);
	tcase_add_test(tc, test_ok_distinct_ports);
	tcase_add_test(tc, test_sizes);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_err_unknown_keys);
	tcase_add_test(tc, test_err_types);
	tcase_add_test(tc, test_err_ranges);
	tcase_add_test(tc, test_err_duplicates);
	tcase_add_test(tc, test_err_port_refs);
	tcase_add_test(tc, test_err_namespaces);
	tcase_add_test(tc, test_err_ids);
	tcase_add_test(tc, test_err_nqn);
	tcase_add_test(tc, test_err_yaml);
	tcase_add_test(tc, test_err_open);
	suite_add_tcase(s, tc);

	tc = tcase_create("subsystem");
	tcase_add_test(tc, test_derived_ids);
	tcase_add_test(tc, test_derive_direct);
	tcase_add_test(tc, test_nqn_valid);
	tcase_add_test(tc, test_lookups_null);
	tcase_add_test(tc, test_dhchap);
	tcase_add_test(tc, test_discovery);
	tcase_add_test(tc, test_tls);
	tcase_add_test(tc, test_host_from);
	tcase_add_test(tc, test_host_nbd_tls);
	tcase_add_test(tc, test_ana);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
