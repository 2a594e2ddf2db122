/*
 * nvmfd: NVMe over Fabrics (NVMe/TCP) target daemon.
 * main(): options, configuration, daemon life, the main loop.
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "nvmfd.h"
#include "host.h"
#include "ctl-proto.h"

static struct event *shutdown_timer;
static struct timespec shutdown_deadline;
static bool shutting_down;

/*
 * Detach in two steps so that start-up errors still reach the terminal and
 * the exit status: the parent waits until the child is ready (exit 0) or
 * gives up (exit 1).
 */
static int ready_fd = -1;

static void
detach_begin(void)
{
	int p[2];
	pid_t pid;
	char c = '0';

	if (pipe(p) != 0)
		fatal("pipe");
	if ((pid = fork()) < 0)
		fatal("fork");
	if (pid > 0) {
		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(c == '1' ? 0 : 1);
	}
	close(p[0]);
	ready_fd = p[1];
	if (setsid() < 0)
		fatal("setsid");
	if (chdir("/") != 0)
		fatal("chdir");
}

/* Listeners are up: let the parent exit 0 and drop the terminal. */
static void
detach_finish(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	(void)write(ready_fd, "1", 1);
	close(ready_fd);
	ready_fd = -1;
}

static const char *
basename_of(const char *p)
{
	const char *s = strrchr(p, '/');

	return (s ? s + 1 : p);
}

/* Detaching moves to "/": anchor the relative path of option opt first. */
static int
anchor_path(int opt, const char **pp, char *buf, size_t len)
{
	char cwd[PATH_MAX];

	if (*pp == NULL || (*pp)[0] == '/')
		return (0);
	if (getcwd(cwd, sizeof(cwd)) == NULL ||
	    (size_t)snprintf(buf, len, "%s/%s", cwd, *pp) >= len) {
		fprintf(stderr, "nvmfd: -%c %s: cannot make it absolute\n",
		    opt, *pp);
		return (-1);
	}
	*pp = buf;
	return (0);
}

static __dead void
usage(void)
{
	fprintf(stderr,
	    "usage: nvmfd [-dFhnV] [-f file] [-p pidfile] [-s socket]\n"
	    "       nvmfd ctl|perf ...   (nvmfctl)\n"
	    "  -d       log debug messages\n"
	    "  -F       stay in the foreground, log to stderr\n"
	    "  -f file  configuration (default %s; built-in default if absent)\n"
	    "  -n       check the configuration and exit\n"
	    "  -p file  write and lock a pidfile (default when detached: %s)\n"
	    "  -s path  control socket (default " CTL_DEFAULT_SOCKET ")\n"
	    "  -V       print the version and exit\n", NVMFD_DEFAULT_CONFIG,
	    NVMFD_DEFAULT_PIDFILE);
	exit(2);
}

/* Every association is asked to go; exit once all connections are closed,
 * or after the grace period. */
static void
shutdown_poll(evutil_socket_t fd, short what, void *arg)
{
	struct timespec now;
	struct timeval tv = { 0, 50 * 1000 };

	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((atomic_load(&nconnections) == 0 && TAILQ_EMPTY(&host_assocs)) ||
	    now.tv_sec > shutdown_deadline.tv_sec) {
		if (atomic_load(&nconnections) > 0)
			log_warnx("exiting with %u connections still open",
			    atomic_load(&nconnections));
		event_base_loopbreak(main_loop->base);
		return;
	}
	evtimer_add(shutdown_timer, &tv);
}

static void
begin_shutdown(void)
{
	struct subsystem *ss;
	struct controller *ctrl, *next;
	struct timeval tv = { 0, 0 };

	if (shutting_down)
		return;
	shutting_down = true;
	service_notify("STOPPING=1");
	log_info("shutting down");
	control_stop();
	host_assocs_delete_all();
	listeners_stop(running_config);
	qpairs_close_port(NULL);
	TAILQ_FOREACH(ss, &running_config->subsystems, entry)
		TAILQ_FOREACH_SAFE(ctrl, &ss->controllers, entry, next)
			ctrl_destroy(ctrl, "target shutting down");
	TAILQ_FOREACH_SAFE(ctrl, &discovery_controllers, entry, next)
		ctrl_destroy(ctrl, "target shutting down");
	loop_finish_turn(main_loop);
	clock_gettime(CLOCK_MONOTONIC, &shutdown_deadline);
	shutdown_deadline.tv_sec += 5;
	evtimer_add(shutdown_timer, &tv);
}

/* SIGHUP: apply the file again; a bad file leaves everything as it was. */
static void
reload_now(void)
{
	char err[1024];

	if (shutting_down)
		return;
	config_reload(err, sizeof(err), NULL, NULL);	/* logs the outcome */
	loop_finish_turn(main_loop);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		begin_shutdown();
		break;
	case SIGHUP:
		reload_now();
		break;
	}
}

int
main(int argc, char *argv[])
{
	const char *path = NULL, *pidfile = NULL, *ctl_path = NULL;
	static char abspath[PATH_MAX];
	bool foreground = false, check_only = false;
	int debug = 0, ch, nworkers;
	const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct event *sigev[nitems(sigs)];
	char err[512];
	struct config *cf;

	fault_init();
	/* One binary: nvmfctl by name or as "nvmfd ctl". */
	if (strcmp(basename_of(argv[0]), "nvmfctl") == 0)
		return (cli_main(argc, argv));
	if (argc > 1 && strcmp(argv[1], "ctl") == 0)
		return (cli_main(argc - 1, argv + 1));
	if (argc > 1 && strcmp(argv[1], "perf") == 0)
		return (perf_main(argc - 1, argv + 1));
	while ((ch = getopt(argc, argv, "dFf:hnp:s:V")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'F':
			foreground = true;
			break;
		case 'f':
			path = optarg;
			break;
		case 'n':
			check_only = true;
			break;
		case 'p':
			pidfile = optarg;
			break;
		case 's':
			ctl_path = optarg;
			break;
		case 'V':
			printf("nvmfd %s\n", PACKAGE_VERSION);
			return (0);
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init(1, debug);

	if (path == NULL && access(NVMFD_DEFAULT_CONFIG, F_OK) == 0)
		path = NVMFD_DEFAULT_CONFIG;
	/* Reload and save use the path later, after a detach moved to "/". */
	if (path != NULL && realpath(path, abspath) != NULL)
		path = abspath;
	if (path != NULL)
		cf = config_load(path, err, sizeof(err));
	else
		cf = config_default();
	if (cf == NULL) {
		fprintf(stderr, "nvmfd: %s\n", path ? err : "out of memory");
		return (1);
	}
	if (check_only) {
		fprintf(stderr, "nvmfd: %s: configuration OK\n",
		    path ? path : "built-in default");
		config_free(cf);
		return (0);
	}
	if (!foreground) {
		static char abspid[PATH_MAX], absctl[PATH_MAX];

		if (pidfile == NULL)
			pidfile = NVMFD_DEFAULT_PIDFILE;
		if (anchor_path('p', &pidfile, abspid, sizeof(abspid)) != 0 ||
		    anchor_path('s', &ctl_path, absctl, sizeof(absctl)) != 0) {
			config_free(cf);
			return (1);
		}
		detach_begin();
	}
	/* After detaching: the pid written must be the daemon's.  Before the
	 * listeners: a second instance stops here, not on a busy port. */
	if (pidfile != NULL) {
		if (service_pidfile_open(pidfile, err, sizeof(err)) != 0) {
			log_warnx("%s", err);
			config_free(cf);
			return (1);
		}
		atexit(service_pidfile_remove);	/* also on fatal() */
	}
	running_config = cf;
	signal(SIGPIPE, SIG_IGN);
	service_raise_nofile(cf->max_connections);

	nworkers = cf->workers > 0 ? cf->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nworkers < 1)
		nworkers = 1;
	loop_poll_ns = (uint64_t)cf->poll_us * 1000;
	if (loops_init(nworkers, cf->mdts) != 0)
		fatalx("cannot set up event loops");
	if (registry_start(cf) != 0)
		return (1);
	/* An explicit socket must work; the default may be out of reach
	 * (not root, no /run/nvmfd): then run without control. */
	if (ctl_path == NULL)
		ctl_path = cf->ctl_socket;
	if (ctl_path != NULL) {
		if (control_start(ctl_path, cf->ctl_group, cf->ctl_ro_socket) != 0)
			return (1);
	} else {
		mkdir(CTL_RUN_DIR, 0755);
		if (control_start(CTL_DEFAULT_SOCKET, cf->ctl_group,
		    cf->ctl_ro_socket) != 0)
			log_warnx("running without a control socket");
	}
	if (metrics_start(cf, err, sizeof(err)) != 0) {
		log_warnx("%s", err);
		return (1);
	}
	if (host_start(cf, ctl_path ? ctl_path : CTL_DEFAULT_SOCKET, err,
	    sizeof(err)) != 0) {
		log_warnx("%s", err);
		return (1);
	}
	loops_start();
	service_heap_policy(main_loop->base);
	for (size_t i = 0; i < nitems(sigs); i++) {
		sigev[i] = evsignal_new(main_loop->base, sigs[i], signal_cb, NULL);
		evsignal_add(sigev[i], NULL);
	}
	/* Made now: stopping must not depend on memory being there. */
	if ((shutdown_timer = evtimer_new(main_loop->base, shutdown_poll,
	    NULL)) == NULL)
		fatal("shutdown timer");
	log_info("nvmfd %s ready: %s, %d worker%s%s, file I/O on %s",
	    PACKAGE_VERSION, path ? path : "built-in default configuration",
	    nworkers, nworkers == 1 ? "" : "s",
	    cf->poll_us ? " (polling)" : "", io_engine_kind(main_loop->engine));
	service_notify("READY=1");
	fault_arm();
	if (!foreground) {
		detach_finish();
		log_init(0, debug);
	}

	event_base_loop(main_loop->base, EVLOOP_NO_EXIT_ON_EMPTY);

	metrics_stop();
	loops_stop();
	host_stop();	/* after: the lanes' loops have stopped */
	registry_stop(cf);
	fault_report();
	log_info("stopped");
	return (0);
}
