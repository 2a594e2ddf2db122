/*
 * Prometheus metrics: GET /metrics on an HTTP listener of the main loop
 * (libevent's evhttp), in the text exposition format 0.0.4.  Off unless the
 * configuration has a metrics: section; loopback unless it says otherwise.
 * The numbers are the ones nvmfctl stats and the SMART log show, read
 * without stopping the loops (STAT_GET).
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "nvmfd.h"

#define METRICS_TIMEOUT		10	/* seconds per request */
#define METRICS_MAX_HEADERS	8192	/* bytes of request headers */
/* Latency buckets exported: below 2^0 .. 2^30 us, then +Inf. */
#define METRICS_LAT_BUCKETS	31

static struct evhttp *http;

/* A label value with \, " and newline escaped, as the format asks. */
static void
label(struct evbuffer *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

static void
family(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* name{subsystem="...",nsid="N"<extra>} */
static void
ns_series(struct evbuffer *b, const char *name, const struct namespace *ns,
    const char *extra)
{
	evbuffer_add_printf(b, "%s{subsystem=\"", name);
	label(b, ns->subsys->nqn);
	evbuffer_add_printf(b, "\",nsid=\"%u\"%s} ", ns->nsid, extra);
}

/*
 * Every namespace's counters summed over the loops once per page, in the
 * order the families walk them: each family is then a read of this
 * snapshot, and all of them agree with each other.
 */
static struct ns_stats *
ns_snapshot(void)
{
	struct subsystem *ss;
	struct namespace *ns;
	struct ns_stats *all;
	size_t n = 0;

	TAILQ_FOREACH(ss, &running_config->subsystems, entry)
		TAILQ_FOREACH(ns, &ss->namespaces, entry)
			n++;
	if ((all = calloc(n ? n : 1, sizeof(*all))) == NULL)
		return (NULL);
	n = 0;
	TAILQ_FOREACH(ss, &running_config->subsystems, entry)
		TAILQ_FOREACH(ns, &ss->namespaces, entry)
			ns_stats_sum(ns, &all[n++]);
	return (all);
}

/* One counter family over every namespace; off is the field's offset. */
static void
ns_counter(struct evbuffer *b, const struct ns_stats *all, const char *name,
    const char *help, size_t off)
{
	struct subsystem *ss;
	struct namespace *ns;

	family(b, name, "counter", help);
	TAILQ_FOREACH(ss, &running_config->subsystems, entry)
		TAILQ_FOREACH(ns, &ss->namespaces, entry) {
			ns_series(b, name, ns, "");
			evbuffer_add_printf(b, "%llu\n", (unsigned long long)
			    *(const uint64_t *)((const char *)all++ + off));
		}
}

static const struct {
	const char	*name, *help;
	size_t		 off;
} ns_counters[] = {
	{ "nvmfd_namespace_reads_total", "Read commands.",
	    offsetof(struct ns_stats, reads) },
	{ "nvmfd_namespace_writes_total", "Write commands.",
	    offsetof(struct ns_stats, writes) },
	{ "nvmfd_namespace_other_commands_total", "Other I/O commands "
	    "(flush, write zeroes, dataset management, ...).",
	    offsetof(struct ns_stats, other) },
	{ "nvmfd_namespace_read_bytes_total", "Bytes read.",
	    offsetof(struct ns_stats, bytes_read) },
	{ "nvmfd_namespace_written_bytes_total", "Bytes written.",
	    offsetof(struct ns_stats, bytes_written) },
	{ "nvmfd_namespace_errors_total", "I/O commands that completed with "
	    "an error status.", offsetof(struct ns_stats, errors) },
	{ "nvmfd_namespace_media_errors_total", "I/O commands the backend "
	    "failed (media and data integrity errors).",
	    offsetof(struct ns_stats, media_errors) },
};

static void
ns_latency(struct evbuffer *b, const struct ns_stats *all)
{
	static const char name[] = "nvmfd_namespace_command_latency_seconds";
	struct subsystem *ss;
	struct namespace *ns;
	char le[48];

	family(b, name, "histogram", "Time from a command's arrival to its "
	    "completion, by namespace.");
	TAILQ_FOREACH(ss, &running_config->subsystems, entry)
		TAILQ_FOREACH(ns, &ss->namespaces, entry) {
			const struct ns_stats *st = all++;
			uint64_t n = 0;

			/* lat[i] counts latencies below 2^i us. */
			for (int i = 0; i < NS_LAT_BUCKETS; i++) {
				n += st->lat[i];
				if (i >= METRICS_LAT_BUCKETS)
					continue;
				snprintf(le, sizeof(le), ",le=\"%g\"",
				    (double)(1ull << i) / 1e6);
				ns_series(b, "nvmfd_namespace_command_latency_"
				    "seconds_bucket", ns, le);
				evbuffer_add_printf(b, "%llu\n",
				    (unsigned long long)n);
			}
			ns_series(b, "nvmfd_namespace_command_latency_seconds_"
			    "bucket", ns, ",le=\"+Inf\"");
			evbuffer_add_printf(b, "%llu\n", (unsigned long long)n);
			ns_series(b, "nvmfd_namespace_command_latency_seconds_"
			    "sum", ns, "");
			evbuffer_add_printf(b, "%.9f\n", st->lat_sum_ns / 1e9);
			ns_series(b, "nvmfd_namespace_command_latency_seconds_"
			    "count", ns, "");
			evbuffer_add_printf(b, "%llu\n", (unsigned long long)n);
		}
}

static void
ports(struct evbuffer *b)
{
	struct port *p;

	family(b, "nvmfd_port_connections", "gauge",
	    "NVMe/TCP connections (queue pairs) open on the port.");
	TAILQ_FOREACH(p, &running_config->ports, entry) {
		int refs = atomic_load(&p->refs);

		evbuffer_add_printf(b, "nvmfd_port_connections{port=\"%u\","
		    "address=\"", p->id);
		label(b, p->address);
		evbuffer_add_printf(b, "\",service=\"%s\"} %d\n", p->service,
		    refs > 0 ? refs - 1 : 0);
	}
}

/* Where a state was set on a port, every group the ANA log lists there;
 * a subsystem with no state set is optimized everywhere and not listed. */
static void
ana_states(struct evbuffer *b)
{
	struct subsystem *ss;

	family(b, "nvmfd_ana_group_state", "gauge", "ANA state of a group "
	    "on a port where states were set: 1 optimized, 2 non-optimized, "
	    "3 inaccessible, 4 persistent loss, 15 change.");
	TAILQ_FOREACH(ss, &running_config->subsystems, entry) {
		const struct ana_map *m = &ss->ana;
		unsigned n = atomic_load(&m->nports);

		for (unsigned i = 0; i < n; i++)
			for (uint32_t g = 1; g <= ANA_GRPMAX; g++) {
				if (!ana_group_listed(ss, g))
					continue;
				evbuffer_add_printf(b, "nvmfd_ana_group_state{"
				    "subsystem=\"");
				label(b, ss->nqn);
				evbuffer_add_printf(b, "\",port=\"%u\",group="
				    "\"%u\"} %u\n", m->port_id[i], g,
				    ana_state(m, g, m->port_id[i]));
			}
	}
}

static void
subsys_busy(struct evbuffer *b)
{
	static const char name[] = "nvmfd_subsystem_busy_seconds_total";
	struct subsystem *ss;
	uint64_t now = now_ns();

	family(b, name, "counter", "Time with an I/O command outstanding on "
	    "any of the subsystem's controllers (SMART Controller Busy Time).");
	TAILQ_FOREACH(ss, &running_config->subsystems, entry) {
		evbuffer_add_printf(b, "%s{subsystem=\"", name);
		label(b, ss->nqn);
		evbuffer_add_printf(b, "\"} %.6f\n",
		    (double)health_busy_ns(&ss->busy, now) / 1e9);
	}
}

/* The whole page, into b; -1 without the memory for it. */
int
metrics_render(struct evbuffer *b)
{
	struct subsystem *ss;
	struct ns_stats *all;
	unsigned nss = 0, io, disc;
	uint64_t errs[METRICS_STATUSES];

	if ((all = ns_snapshot()) == NULL)
		return (-1);

	family(b, "nvmfd_info", "gauge", "Always 1; the version is a label.");
	evbuffer_add_printf(b, "nvmfd_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);
	TAILQ_FOREACH(ss, &running_config->subsystems, entry)
		nss++;
	family(b, "nvmfd_subsystems", "gauge", "Subsystems served.");
	evbuffer_add_printf(b, "nvmfd_subsystems %u\n", nss);
	ctrl_counts(&io, &disc);
	family(b, "nvmfd_controllers", "gauge",
	    "Controllers (associations), by kind.");
	evbuffer_add_printf(b, "nvmfd_controllers{kind=\"io\"} %u\n"
	    "nvmfd_controllers{kind=\"discovery\"} %u\n", io, disc);
	family(b, "nvmfd_connections", "gauge",
	    "NVMe/TCP connections (queue pairs) open, on every port.");
	evbuffer_add_printf(b, "nvmfd_connections %u\n",
	    atomic_load(&nconnections));
	ports(b);
	ana_states(b);

	for (size_t i = 0; i < nitems(ns_counters); i++)
		ns_counter(b, all, ns_counters[i].name, ns_counters[i].help,
		    ns_counters[i].off);
	ns_latency(b, all);
	free(all);
	subsys_busy(b);

	status_counts(errs);
	family(b, "nvmfd_command_errors_total", "counter", "Commands "
	    "(admin, fabrics and I/O) completed with an error, by status code "
	    "type and status code.");
	for (unsigned i = 0; i < METRICS_STATUSES; i++)
		if (errs[i] != 0)
			evbuffer_add_printf(b, "nvmfd_command_errors_total{"
			    "sct=\"0x%x\",sc=\"0x%02x\"} %llu\n", i >> 8,
			    i & 0xff, (unsigned long long)errs[i]);
	return (0);
}

static void
metrics_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b;

	(void)arg;
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (evhttp_request_get_command(req) == EVHTTP_REQ_GET &&
	    metrics_render(b) != 0) {
		evbuffer_free(b);
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

static void
other_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics is here");
}

int
metrics_start(const struct config *cf, char *err, size_t errlen)
{
	if (cf->metrics_port == 0)
		return (0);
	if ((http = evhttp_new(main_loop->base)) == NULL) {
		snprintf(err, errlen, "metrics: out of memory");
		return (-1);
	}
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(http, 0);
	evhttp_set_timeout(http, METRICS_TIMEOUT);
	evhttp_set_cb(http, "/metrics", metrics_cb, NULL);
	evhttp_set_gencb(http, other_cb, NULL);
	if (evhttp_bind_socket(http, cf->metrics_address,
	    (uint16_t)cf->metrics_port) != 0) {
		snprintf(err, errlen, "metrics: cannot listen on %s port %u",
		    cf->metrics_address, cf->metrics_port);
		evhttp_free(http);
		http = NULL;
		return (-1);
	}
	log_info("metrics on http://%s%s%s:%u/metrics",
	    strchr(cf->metrics_address, ':') ? "[" : "", cf->metrics_address,
	    strchr(cf->metrics_address, ':') ? "]" : "", cf->metrics_port);
	return (0);
}

void
metrics_stop(void)
{
	if (http != NULL)
		evhttp_free(http);
	http = NULL;
}
