/* The `pyoci` command: a C front door to the Python implementation.
 *
 * Starting a Python interpreter and importing click costs far more than what `state`,
 * `kill`, `start` and `list` actually do (a file read, a signal, a fifo, a directory's
 * files), and containerd and podman call those many times per container. So this
 * executable is the installed `pyoci`: it parses runc's global options as pyoci's CLI
 * (pyoci/cli.py) accepts them and does the plain happy path of
 *
 *     state ID        kill ID [SIGNAL]        start ID        delete [--force] ID
 *     list [-q|--quiet] [-f|--format table|json]   (as separate words, each at most once)
 *
 * itself, with output byte for byte what the Python code prints. `list` gathers every
 * line before it writes one, so that any doubt about any container (a state.json it would
 * not read the way Python does, a table cell or owner name that is not plain printable
 * ASCII, where str.ljust counts code points and json.dumps escapes) still falls back;
 * entries Container.list skips (invalid ids such as `.ID~deleted~PID`, no or unreadable
 * state.json, not a directory) are skipped here too. Python stays the
 * reference implementation: everything else, and every doubt (any other command or
 * option, --debug, --help, an error of any kind, a status other than the plain one, a
 * state.json in a form Python would not have written, a config.json that may hold hooks)
 * execs the Python CLI with the unchanged argv, before anything was changed, so that
 * messages and exit codes are exactly Python's. That exec skips `site`: the interpreter
 * and sys.path are baked in at build time (pyoci_frontdoor_config.h, made by setup.py).
 *
 * One hand-over happens after a change: a `start` whose init reported a failure (its exec
 * failed). The container must then be stopped and destroyed and the error printed, as
 * pyoci/container/start.py does; the C releases its lock and execs Python with init's
 * report (PYOCI_BOOT_STARTED below), which sets pyoci.container.start.RELEASED and runs the
 * same `start` command: it re-takes the lock and carries on from the report.
 *
 * And `delete --force` of a running container kills its processes (SIGKILL to each in its
 * cgroups, waited for) before it removes anything; should a cgroup then stay busy, or a
 * process not die, the unchanged `delete --force` goes to Python, which finds the
 * container stopped or still dying and finishes the same delete (it kills and retries).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pyoci_frontdoor_config.h"  /* PYOCI_PYTHON, PYOCI_SYS_PATH */
#include "pyoci_json.h"

#define DEFAULT_ROOT "/run/pyoci"
#define MAX_STATE (16 << 20)

#define PYOCI_BOOT_PREFIX "import sys;sys.path[:0]=" PYOCI_SYS_PATH ";del sys.argv[0];"
/* `python -I -S -c PYOCI_BOOT argv0 args...`: sys.argv is then [argv0, args...]. */
#define PYOCI_BOOT PYOCI_BOOT_PREFIX "from pyoci.__main__ import entry;entry()"
/* `python -I -S -c PYOCI_BOOT_STARTED argv0 HEX args...`: HEX is init's report. */
#define PYOCI_BOOT_STARTED PYOCI_BOOT_PREFIX \
    "r=bytes.fromhex(sys.argv.pop(1));from pyoci.__main__ import entry;" \
    "import pyoci.container.start as s;s.RELEASED=r;entry()"

static int g_argc;
static char **g_argv;

/* ------------------------------------------------------------------------------------ */
/* Handing over to Python */

static _Noreturn void exec_python(const char *report_hex)
{
    char **args = calloc((size_t)g_argc + 8, sizeof(char *));
    int n = 0;
    if (args != NULL) {
        args[n++] = PYOCI_PYTHON;
        args[n++] = "-I";
        args[n++] = "-S";
        args[n++] = "-c";
        args[n++] = report_hex ? PYOCI_BOOT_STARTED : PYOCI_BOOT;
        args[n++] = g_argv[0];
        if (report_hex)
            args[n++] = (char *)report_hex;
        for (int i = 1; i < g_argc; i++)
            args[n++] = g_argv[i];
        args[n] = NULL;
        execv(PYOCI_PYTHON, args);
    }
    fprintf(stderr, "pyoci: cannot run %s: %s\n", PYOCI_PYTHON, strerror(errno));
    exit(1);
}

/* Not the plain happy path: let Python do the whole command (nothing was changed). */
static _Noreturn void fallback(void)
{
    exec_python(NULL);
}

/* ------------------------------------------------------------------------------------ */
/* Files */

static char *path_join(const char *dir, const char *name)
{
    char *p;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        fallback();
    return p;
}

/* The whole file at path (NUL-terminated), or NULL (errno set). */
static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t cap = 4096, n = 0;
    char *buf;
    if (fd < 0)
        return NULL;
    buf = malloc(cap + 1);
    for (;;) {
        ssize_t r;
        if (buf == NULL || n == cap) {
            char *nb = (cap < MAX_STATE && buf != NULL) ? realloc(buf, cap * 2 + 1) : NULL;
            if (nb == NULL) {
                free(buf);
                close(fd);
                errno = EFBIG;
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ------------------------------------------------------------------------------------ */
/* The container's stored state (pyoci/state.py) */

struct pair {
    struct jtok key, value;
};

struct stored {
    char *buf;
    struct jtok id, bundle, rootfs, created, owner, annotations, freezer, cgroup, destroyed;
    int has_pid, has_pid_start;
    long long pid, pid_start;
    struct pair *notes;  /* annotations, in order */
    size_t nnotes;
};

static int is_string(struct jtok t)
{
    return t.n >= 2 && t.p[0] == '"';
}

static int stored_member(struct jtok key, struct jtok value, void *arg)
{
    struct stored *s = arg;
    if (json_is(key, "\"id\""))
        s->id = value;
    else if (json_is(key, "\"pid\""))
        s->has_pid = json_int(value, &s->pid) == 0;
    else if (json_is(key, "\"pid_start\""))
        s->has_pid_start = json_int(value, &s->pid_start) == 0;
    else if (json_is(key, "\"bundle\""))
        s->bundle = value;
    else if (json_is(key, "\"rootfs\""))
        s->rootfs = value;
    else if (json_is(key, "\"created\""))
        s->created = value;
    else if (json_is(key, "\"owner\""))
        s->owner = value;
    else if (json_is(key, "\"annotations\""))
        s->annotations = value;
    else if (json_is(key, "\"freezer\""))
        s->freezer = value;
    else if (json_is(key, "\"cgroup\""))
        s->cgroup = value;
    else if (json_is(key, "\"destroyed\""))
        s->destroyed = value;
    return 0;
}

static int note_member(struct jtok key, struct jtok value, void *arg)
{
    struct stored *s = arg;
    struct pair *more;
    if (!is_string(value))
        return -1;  /* not the map of strings the spec has */
    for (size_t i = 0; i < s->nnotes; i++)
        if (s->notes[i].key.n == key.n && memcmp(s->notes[i].key.p, key.p, key.n) == 0)
            return -1;  /* a duplicate key: Python's dict keeps the first place, last value */
    more = realloc(s->notes, (s->nnotes + 1) * sizeof(*more));
    if (more == NULL)
        return -1;
    s->notes = more;
    s->notes[s->nnotes++] = (struct pair){key, value};
    return 0;
}

/* state.json read and checked as read_state/oci_state would take it; or fallback(). */
static void parse_stored(struct stored *s, size_t len);

static void load_stored(const char *dir, struct stored *s)
{
    char *path = path_join(dir, "state.json");
    size_t len;

    memset(s, 0, sizeof(*s));

    s->buf = read_file(path, &len);
    free(path);
    if (s->buf == NULL)
        fallback();  /* missing (creating, or no container) or unreadable */
    parse_stored(s, len);
}

/* s->buf (len bytes) checked as read_state/oci_state would take it; or fallback(). */
static void parse_stored(struct stored *s, size_t len)
{
    const char *p, *end;

    p = s->buf;
    end = s->buf + len;
    if (json_object(&p, end, stored_member, s) < 0)
        fallback();
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (p != end || !s->has_pid || !s->has_pid_start)
        fallback();
    if (!is_string(s->id) || !is_string(s->bundle) || !is_string(s->rootfs)
            || !is_string(s->created) || (s->owner.p != NULL && !is_string(s->owner)))
        fallback();
    if (s->annotations.p != NULL && !json_is(s->annotations, "null")) {
        const char *q = s->annotations.p;
        if (json_object(&q, q + s->annotations.n, note_member, s) < 0)
            fallback();
    }
}

/* The start time of a live, non-zombie pid (1), dead (0), or -1 if /proc/PID/stat is not
 * what process_start_time expects. */
static int process_start_time(long long pid, long long *start)
{
    char path[64], buf[1024], *p, *field;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%lld/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return (errno == ENOENT || errno == ESRCH) ? 0 : -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return errno == ESRCH ? 0 : -1;
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL || p[1] == '\0')
        return -1;
    p += 2;
    for (int i = 0; (field = strsep(&p, " \n")) != NULL;) {
        if (*field == '\0')
            continue;
        if (i == 0 && (field[0] == 'Z' || field[0] == 'X') && field[1] == '\0')
            return 0;
        if (i++ == 19) {
            char *e;
            errno = 0;
            *start = strtoll(field, &e, 10);
            return (errno || *e || e == field) ? -1 : 1;
        }
    }
    return -1;
}

/* is_alive(); `or_else` if /proc says something unexpected (-1: fall back to Python). */
static int is_alive(const struct stored *s, int or_else)
{
    long long start;
    int r;
    if (s->pid <= 0)
        return 0;
    r = process_start_time(s->pid, &start);
    if (r < 0 && or_else < 0)
        fallback();
    if (r < 0)
        return or_else;
    return r == 1 && start == s->pid_start;
}

/* A JSON string token without escapes, as a C string (the caller frees it). */
static char *plain_string(struct jtok t)
{
    if (!json_is_plain_string(t))
        fallback();
    return strndup(t.p + 1, t.n - 2);
}

static int is_frozen(const struct stored *s)
{
    char *path, *text;
    size_t len, a = 0;
    struct jtok f = s->freezer;

    if (f.p == NULL || json_is(f, "null") || json_is(f, "\"\""))
        return 0;
    path = plain_string(f);
    text = read_file(path, &len);
    free(path);
    if (text == NULL)
        return 0;  /* OSError: not frozen */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] >= 0x7f || text[i] == '\0')
            fallback();  /* str.strip() on non-ASCII text: leave it to Python */
    while (len > 0 && (text[len - 1] == ' ' || (text[len - 1] >= '\t' && text[len - 1] <= '\r')
                       || (text[len - 1] >= 0x1c && text[len - 1] <= 0x1f)))
        text[--len] = '\0';
    while (a < len && (text[a] == ' ' || (text[a] >= '\t' && text[a] <= '\r')
                       || (text[a] >= 0x1c && text[a] <= 0x1f)))
        a++;
    int frozen = !strcmp(text + a, "1") || !strcmp(text + a, "FROZEN")
                 || !strcmp(text + a, "FREEZING");
    free(text);
    return frozen;
}

/* status_of() for a container whose state.json exists. */
static const char *status_of(const char *dir, const struct stored *s)
{
    struct stat st;
    char *fifo;
    int exists;

    if (!is_alive(s, -1))
        return "stopped";
    if (is_frozen(s))
        return "paused";
    fifo = path_join(dir, "exec.fifo");
    exists = stat(fifo, &st) == 0;
    free(fifo);
    return exists ? "created" : "running";
}

/* ------------------------------------------------------------------------------------ */
/* Commands */

static void put(const char *s, size_t n)
{
    fwrite(s, 1, n, stdout);
}

static void put_tok(struct jtok t)
{
    put(t.p, t.n);
}

static int cmd_state(const char *dir)
{
    struct stored s;
    const char *status;

    load_stored(dir, &s);
    status = status_of(dir, &s);
    /* json.dumps(oci_state(...), indent=2) and click.echo's newline */
    printf("{\n  \"ociVersion\": \"1.3.0\",\n  \"id\": ");
    put_tok(s.id);
    printf(",\n  \"pid\": %lld,\n  \"status\": \"%s\",\n  \"bundle\": ",
           strcmp(status, "stopped") ? s.pid : 0LL, status);
    put_tok(s.bundle);
    printf(",\n  \"rootfs\": ");
    put_tok(s.rootfs);
    printf(",\n  \"created\": ");
    put_tok(s.created);
    printf(",\n  \"owner\": ");
    if (s.owner.p != NULL)
        put_tok(s.owner);
    else
        printf("\"\"");
    if (s.nnotes > 0) {
        printf(",\n  \"annotations\": {");
        for (size_t i = 0; i < s.nnotes; i++) {
            printf(i ? ",\n    " : "\n    ");
            put_tok(s.notes[i].key);
            printf(": ");
            put_tok(s.notes[i].value);
        }
        printf("\n  }");
    }
    printf("\n}\n");
    return fflush(stdout) == 0 ? 0 : 1;
}

/* The signal names Python's signal.Signals has on Linux (parse_signal's table). */
static const struct {
    const char *name;
    int num;
} SIGNALS[] = {
    {"SIGABRT", 6}, {"SIGALRM", 14}, {"SIGBUS", 7}, {"SIGCHLD", 17}, {"SIGCLD", 17},
    {"SIGCONT", 18}, {"SIGFPE", 8}, {"SIGHUP", 1}, {"SIGILL", 4}, {"SIGINT", 2},
    {"SIGIO", 29}, {"SIGIOT", 6}, {"SIGKILL", 9}, {"SIGPIPE", 13}, {"SIGPOLL", 29},
    {"SIGPROF", 27}, {"SIGPWR", 30}, {"SIGQUIT", 3}, {"SIGRTMAX", 64}, {"SIGRTMIN", 34},
    {"SIGSEGV", 11}, {"SIGSTKFLT", 16}, {"SIGSTOP", 19}, {"SIGSYS", 31}, {"SIGTERM", 15},
    {"SIGTRAP", 5}, {"SIGTSTP", 20}, {"SIGTTIN", 21}, {"SIGTTOU", 22}, {"SIGURG", 23},
    {"SIGUSR1", 10}, {"SIGUSR2", 12}, {"SIGVTALRM", 26}, {"SIGWINCH", 28},
    {"SIGXCPU", 24}, {"SIGXFSZ", 25},
};

static int is_py_space(char c)  /* ASCII characters str.strip() strips */
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* A small decimal number (all ASCII digits, at most 3), or -1. */
static int small_number(const char *s, size_t n)
{
    int v = 0;
    if (n == 0 || n > 3)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* pyoci.signals.parse_signal, or -1 for anything it would not accept (or that is not
 * plain ASCII): Python then says why. */
static int parse_signal(const char *arg)
{
    char name[32];
    size_t a = 0, b = strlen(arg), n;
    int num;

    for (const char *c = arg; *c; c++)
        if ((unsigned char)*c >= 0x80)
            return -1;
    while (a < b && is_py_space(arg[a]))
        a++;
    while (b > a && is_py_space(arg[b - 1]))
        b--;
    n = b - a;
    if (n > 0 && arg[a] >= '0' && arg[a] <= '9') {
        num = small_number(arg + a, n);
        return num <= SIGRTMAX ? num : -1;
    }
    if (n + 4 > sizeof(name))
        return -1;
    n = 0;
    if (!(b - a >= 3 && strncasecmp(arg + a, "SIG", 3) == 0)) {
        memcpy(name, "SIG", 3);
        n = 3;
    }
    for (size_t i = a; i < b; i++) {
        char c = arg[i];
        name[n++] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    name[n] = '\0';
    if (strncmp(name, "SIGRTMIN+", 9) == 0 || strncmp(name, "SIGRTMAX-", 9) == 0) {
        int off = small_number(name + 9, n - 9);
        if (off < 0)
            return -1;
        num = name[6] == 'I' ? SIGRTMIN + off : SIGRTMAX - off;
        return (num >= SIGRTMIN && num <= SIGRTMAX) ? num : -1;
    }
    for (size_t i = 0; i < sizeof(SIGNALS) / sizeof(SIGNALS[0]); i++)
        if (strcmp(name, SIGNALS[i].name) == 0)
            return SIGNALS[i].num;
    return -1;
}

static int cmd_kill(const char *dir, const char *sigarg)
{
    struct stored s;
    const char *status;
    long long start;
    int sig = parse_signal(sigarg && *sigarg ? sigarg : "SIGTERM");
    int pidfd;

    if (sig < 0)
        fallback();
    load_stored(dir, &s);
    status = status_of(dir, &s);
    if (strcmp(status, "created") && strcmp(status, "running") && strcmp(status, "paused"))
        fallback();
    /* signal_init: through a pidfd checked against init's start time */
    pidfd = (int)syscall(SYS_pidfd_open, (pid_t)s.pid, 0);
    if (pidfd < 0)
        fallback();
    if (process_start_time(s.pid, &start) != 1 || start != s.pid_start)
        fallback();
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
        fallback();  /* not sent: Python tries again and reports */
    close(pidfd);
    return 0;
}

/* st.Lock: an exclusive flock on the container directory, which must still be the one at
 * that path once we hold it. */
static int lock_dir(const char *dir)
{
    struct stat held, now;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fallback();
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR)
            fallback();
    if (fstat(fd, &held) < 0 || stat(dir, &now) < 0 || held.st_dev != now.st_dev
            || held.st_ino != now.st_ino)
        fallback();
    return fd;
}

/* Whether the file may name `word` (a hook list): any read error counts as yes. */
static int file_mentions(const char *dir, const char *name, const char *word)
{
    char *path = path_join(dir, name), *text;
    size_t len;
    int found;

    text = read_file(path, &len);
    free(path);
    if (text == NULL)
        return 1;
    found = memmem(text, len, word, strlen(word)) != NULL;
    free(text);
    return found;
}

static int cmd_start(const char *dir)
{
    struct stored s;
    char *fifo, *report = NULL, *hex;
    size_t len = 0;
    int lock, fd;

    lock = lock_dir(dir);
    load_stored(dir, &s);
    if (strcmp(status_of(dir, &s), "created") != 0)
        fallback();  /* and its error message */
    if (file_mentions(dir, "config.json", "\"poststart\""))
        fallback();  /* hooks run by Python */

    /* _release_init: opening the fifo lets init go on; it writes "0" and execs (EOF) */
    fifo = path_join(dir, "exec.fifo");
    fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        fallback();
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, 100);
        if (r < 0 && errno == EINTR)
            continue;
        if (r > 0) {
            char chunk[4096], *more;
            ssize_t n = read(fd, chunk, sizeof(chunk));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0)
                break;
            more = realloc(report, len + (size_t)n);
            if (more == NULL)
                break;
            report = more;
            memcpy(report + len, chunk, (size_t)n);
            len += (size_t)n;
        } else if (!is_alive(&s, 1)) {  /* nothing may fall back now */
            break;
        }
    }
    close(fd);
    unlink(fifo);
    free(fifo);
    if (len == 1 && report[0] == '0') {
        close(lock);
        return 0;
    }
    /* init failed: Python stops and destroys the container and says why */
    hex = malloc(len * 2 + 1);
    if (hex == NULL)
        abort();
    for (size_t i = 0; i < len; i++)
        sprintf(hex + 2 * i, "%02x", (unsigned char)report[i]);
    hex[len * 2] = '\0';
    close(lock);
    exec_python(hex);
}

/* The cgroup directories of pyoci.cgroups.load_manager(stored).dirs(). */
struct cgdirs {
    struct jtok version, path, paths;
    char *dirs[64];
    int n;
};

static int cgroup_member(struct jtok key, struct jtok value, void *arg)
{
    struct cgdirs *c = arg;
    if (json_is(key, "\"version\""))
        c->version = value;
    else if (json_is(key, "\"path\""))
        c->path = value;
    else if (json_is(key, "\"paths\""))
        c->paths = value;
    return 0;
}

static int add_cgroup_dir(struct cgdirs *c, struct jtok dir)
{
    if (c->n == (int)(sizeof(c->dirs) / sizeof(c->dirs[0])) || !json_is_plain_string(dir))
        return -1;
    c->dirs[c->n++] = strndup(dir.p + 1, dir.n - 2);
    return 0;
}

/* v1: {mountpoint: [[controllers...], dir], ...} */
static int v1_member(struct jtok key, struct jtok value, void *arg)
{
    const char *p = value.p, *end = value.p + value.n, *dir;
    (void)key;
    if (*p++ != '[' || json_skip_value(&p, end) < 0)
        return -1;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
        p++;
    if (p >= end || *p++ != ',')
        return -1;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
        p++;
    dir = p;
    if (json_skip_value(&p, end) < 0 || end - p != 1 || *p != ']')
        return -1;  /* a pair, nothing more */
    return add_cgroup_dir(arg, (struct jtok){dir, (size_t)(p - dir)});
}

static void cgroup_dirs(const struct stored *s, struct cgdirs *c)
{
    const char *p;
    memset(c, 0, sizeof(*c));
    if (s->cgroup.p == NULL || json_is(s->cgroup, "null"))
        return;  /* no cgroup */
    p = s->cgroup.p;
    if (json_object(&p, p + s->cgroup.n, cgroup_member, c) < 0)
        fallback();
    if (json_is(c->version, "2")) {
        if (add_cgroup_dir(c, c->path) < 0)
            fallback();
    } else if (json_is(c->version, "1") && c->paths.p != NULL) {
        p = c->paths.p;
        if (json_object(&p, p + c->paths.n, v1_member, c) < 0)
            fallback();
    } else {
        fallback();
    }
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP || type == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;  /* errors are ignored, as state._remove_tree does */
}

/* config.json read as delete._read_config would (missing is empty), with no poststop hooks;
 * anything else is for Python. */
static void check_no_poststop(const char *dir)
{
    char *path = path_join(dir, "config.json"), *text;
    const char *p;
    size_t len;

    text = read_file(path, &len);
    free(path);
    if (text == NULL) {
        if (errno == ENOENT)
            return;
        fallback();
    }
    p = text;
    if (memmem(text, len, "\"poststop\"", 10) != NULL || json_skip_value(&p, text + len) < 0)
        fallback();
    while (p < text + len && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
        p++;
    if (p != text + len)
        fallback();
    free(text);
}

#define MAX_KILLED 1024

/* delete._kill_and_wait for a running container with cgroups: SIGKILL, through a pidfd,
 * to every process its cgroups list, then wait (up to 10 s) until each has exited. A
 * process in a sub-cgroup is not listed: its cgroup's rmdir then fails, and Python (which
 * kills and retries) takes over, as it does for anything else in doubt. */
static void kill_and_wait(const struct cgdirs *cg)
{
    struct pollfd fds[MAX_KILLED];
    int n = 0, left;
    struct timespec now, deadline;

    for (int i = 0; i < cg->n; i++) {
        char *path = path_join(cg->dirs[i], "cgroup.procs"), *text, *line, *next;
        size_t len;

        text = read_file(path, &len);
        free(path);
        if (text == NULL) {
            if (errno == ENOENT)
                continue;
            fallback();
        }
        for (line = text; line < text + len; line = next) {
            char *e;
            long pid;
            int fd;

            next = memchr(line, '\n', (size_t)(text + len - line));
            next = next ? next + 1 : text + len;
            if (next - line <= 1)
                continue;
            errno = 0;
            pid = strtol(line, &e, 10);
            if (errno || pid <= 0 || (*e != '\n' && e != text + len) || n == MAX_KILLED)
                fallback();
            fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
            if (fd < 0) {
                if (errno == ESRCH)
                    continue;  /* gone already */
                fallback();
            }
            if (syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
                fallback();
            fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
        }
        free(text);
    }
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 10;
    for (left = n; left > 0;) {
        long ms;
        int r;

        clock_gettime(CLOCK_MONOTONIC, &now);
        ms = (deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1000000;
        if (ms <= 0)
            fallback();  /* one will not go: Python waits and reports */
        r = poll(fds, (nfds_t)n, (int)ms);
        if (r < 0 && errno != EINTR)
            fallback();
        for (int i = 0; r > 0 && i < n; i++)
            if (fds[i].fd >= 0 && fds[i].revents) {
                close(fds[i].fd);
                fds[i].fd = -1;  /* poll skips it from now on */
                left--;
            }
    }
}

/* remove_dir's first tries: a cgroup whose last process just exited may be busy a moment
 * longer; a few retries over 100 ms, then Python's own (which also kills what lingers). */
static void remove_cgroup_dir(const char *dir)
{
    for (int tries = 0; rmdir(dir) < 0; tries++) {
        struct timespec pause = {0, 1000000};

        if (errno == ENOENT)
            return;
        if (errno != EBUSY || tries == 100)
            fallback();
        nanosleep(&pause, NULL);
    }
}

static int cmd_delete(const char *root, const char *id, const char *dir, int force)
{
    struct stored s;
    struct cgdirs cg;
    const char *status;
    char *doomed;
    int lock;

    lock = lock_dir(dir);
    load_stored(dir, &s);
    if (s.destroyed.p != NULL && !json_is(s.destroyed, "null") && !json_is(s.destroyed, "false"))
        fallback();
    status = status_of(dir, &s);
    /* not stopped: Python refuses, or with --force kills; running with --force and
     * cgroups (no pid namespace scan needed): killed here, as Python would */
    if (strcmp(status, "stopped") != 0 && !(force && !strcmp(status, "running")))
        fallback();
    check_no_poststop(dir);
    cgroup_dirs(&s, &cg);
    if (strcmp(status, "running") == 0) {
        if (cg.n == 0)
            fallback();
        kill_and_wait(&cg);
    }
    /* cgroups.destroy: a stopped container's cgroups are empty; if one is not (a process
     * left behind, a sub-cgroup), Python kills and retries, and finds gone what went here */
    for (int i = 0; i < cg.n; i++)
        remove_cgroup_dir(cg.dirs[i]);
    /* state.remove_dir: renamed out of the way first, then removed */
    if (asprintf(&doomed, "%s/.%s~deleted~%d", root, id, (int)getpid()) < 0)
        fallback();
    if (rename(dir, doomed) < 0) {
        if (errno != ENOENT)
            fallback();
    } else {
        nftw(doomed, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    close(lock);
    return 0;
}

/* Container.list: one container's line, everything it prints gathered before any output
 * (so that any doubt can still fall back). */
struct listed {
    struct stored s;
    const char *status;
    char *owner;  /* NULL with -q, which prints no owner */
};

static int valid_id(const char *id);

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* _owner/_user_name: the state directory owner's name, "#uid" if unnamed, "" if the stat
 * fails; a name that is not plain printable ASCII (it would need escaping) is for Python. */
static char *owner_of(const char *dir)
{
    static uid_t last_uid;
    static char *last_name;
    struct stat st;
    struct passwd *pw;
    char *name;

    if (stat(dir, &st) < 0)
        return (char *)"";
    if (last_name != NULL && st.st_uid == last_uid)
        return last_name;
    pw = getpwuid(st.st_uid);
    if (pw == NULL) {
        if (asprintf(&name, "#%u", (unsigned)st.st_uid) < 0)
            fallback();
    } else {
        for (const char *c = pw->pw_name; *c; c++)
            if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\')
                fallback();
        name = strdup(pw->pw_name);
    }
    if (name == NULL)
        fallback();
    last_uid = st.st_uid;
    last_name = name;
    return name;
}

/* One container of the list: 1 (listed), 0 (skipped, as Container.list skips it: state.json
 * unreadable, missing or not in a directory), or fallback() on any other doubt. */
static int list_one(const char *root, const char *name, int quiet, int table,
                    struct listed *out)
{
    char *dir = path_join(root, name), *path = path_join(dir, "state.json");
    size_t len;
    char *text = read_file(path, &len);

    free(path);
    if (text == NULL) {
        if (errno == EFBIG)
            fallback();  /* too big for us, not for Python */
        free(dir);
        return 0;
    }
    memset(&out->s, 0, sizeof(out->s));
    out->s.buf = text;
    parse_stored(&out->s, len);  /* checked as for `state` (corrupt: Python's to skip) */
    out->status = status_of(dir, &out->s);
    if (!json_is_plain_string(out->s.id))
        fallback();  /* printed as a str by -q and table */
    if (table && (!json_is_plain_string(out->s.bundle) || !json_is_plain_string(out->s.created)))
        fallback();  /* str.ljust and len count code points: Python's to do */
    out->owner = quiet ? NULL : owner_of(dir);
    free(dir);
    return 1;
}

static void put_padded(const char *s, size_t n, size_t width)
{
    put(s, n);
    for (; n < width; n++)
        putchar(' ');
}

static int cmd_list(const char *root, int quiet, int table)
{
    DIR *d = opendir(root);
    struct dirent *e;
    char **names = NULL;
    struct listed *items;
    size_t nnames = 0, n = 0;

    if (d == NULL && errno != ENOENT)
        fallback();  /* FileNotFoundError alone is an empty list */
    while (d != NULL && (errno = 0, e = readdir(d)) != NULL) {
        char **more;
        if (!valid_id(e->d_name))  /* InvalidID: `.`, `..`, `.ID~deleted~PID`, strangers */
            continue;
        more = realloc(names, (nnames + 1) * sizeof(*names));
        if (more == NULL)
            fallback();
        names = more;
        if ((names[nnames++] = strdup(e->d_name)) == NULL)
            fallback();
    }
    if (d != NULL && errno != 0)
        fallback();
    if (d != NULL)
        closedir(d);
    qsort(names, nnames, sizeof(*names), by_name);  /* sorted(): ASCII names, byte order */
    items = calloc(nnames + 1, sizeof(*items));
    if (items == NULL)
        fallback();
    for (size_t i = 0; i < nnames; i++)
        n += (size_t)list_one(root, names[i], quiet, table, &items[n]);

    /* Nothing may fall back from here on. */
    if (quiet) {
        for (size_t i = 0; i < n; i++) {
            put(items[i].s.id.p + 1, items[i].s.id.n - 2);
            putchar('\n');
        }
    } else if (!table) {
        /* json.dumps(items or None, separators=(",", ":")) */
        if (n == 0)
            printf("null");
        for (size_t i = 0; i < n; i++) {
            const struct stored *s = &items[i].s;
            printf(i ? ",{\"ociVersion\":\"1.3.0\",\"id\":" : "[{\"ociVersion\":\"1.3.0\",\"id\":");
            put_tok(s->id);
            printf(",\"pid\":%lld,\"status\":\"%s\",\"bundle\":",
                   strcmp(items[i].status, "stopped") ? s->pid : 0LL, items[i].status);
            put_tok(s->bundle);
            printf(",\"rootfs\":");
            put_tok(s->rootfs);
            printf(",\"created\":");
            put_tok(s->created);
            printf(",\"owner\":\"%s\"", items[i].owner);
            if (s->nnotes > 0) {
                printf(",\"annotations\":{");
                for (size_t j = 0; j < s->nnotes; j++) {
                    if (j)
                        putchar(',');
                    put_tok(s->notes[j].key);
                    putchar(':');
                    put_tok(s->notes[j].value);
                }
                putchar('}');
            }
            putchar('}');
        }
        printf(n ? "]\n" : "\n");
    } else {
        /* format_table: every cell but the last padded to max(12, widest + 3) */
        static const char *head[] = {"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"};
        char (*pids)[24] = calloc(n + 1, sizeof(*pids));
        size_t w[5];
        if (pids == NULL)
            abort();
        for (int c = 0; c < 5; c++)
            w[c] = strlen(head[c]) + 3 > 12 ? strlen(head[c]) + 3 : 12;
        for (size_t i = 0; i < n; i++) {
            const struct stored *s = &items[i].s;
            size_t cell[4];
            snprintf(pids[i], sizeof(pids[i]), "%lld",
                     strcmp(items[i].status, "stopped") ? s->pid : 0LL);
            cell[0] = s->id.n - 2;
            cell[1] = strlen(pids[i]);
            cell[2] = strlen(items[i].status);
            cell[3] = s->bundle.n - 2;
            for (int c = 0; c < 4; c++)
                if (cell[c] + 3 > w[c])
                    w[c] = cell[c] + 3;
            if (s->created.n - 2 + 3 > w[4])
                w[4] = s->created.n - 2 + 3;
        }
        for (int c = 0; c < 5; c++)
            put_padded(head[c], strlen(head[c]), w[c]);
        printf("%s\n", head[5]);
        for (size_t i = 0; i < n; i++) {
            const struct stored *s = &items[i].s;
            put_padded(s->id.p + 1, s->id.n - 2, w[0]);
            put_padded(pids[i], strlen(pids[i]), w[1]);
            put_padded(items[i].status, strlen(items[i].status), w[2]);
            put_padded(s->bundle.p + 1, s->bundle.n - 2, w[3]);
            put_padded(s->created.p + 1, s->created.n - 2, w[4]);
            printf("%s\n", items[i].owner);
        }
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------------------------ */
/* Command line */

/* check_container_id: [A-Za-z0-9_+.-]+, not . or .. */
static int valid_id(const char *id)
{
    if (*id == '\0' || !strcmp(id, ".") || !strcmp(id, ".."))
        return 0;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
              || *c == '_' || *c == '+' || *c == '.' || *c == '-'))
            return 0;
    return 1;
}

/* An option's value: `--opt=VALUE` or `--opt VALUE` (as click takes it, whatever it is). */
static const char *option_value(const char *arg, const char *opt, int *i)
{
    size_t n = strlen(opt);
    if (strncmp(arg, opt, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] != '\0')
        return NULL;
    if (*i + 1 >= g_argc)
        fallback();  /* click's "requires an argument" */
    return g_argv[++*i];
}

int main(int argc, char **argv)
{
    const char *root = DEFAULT_ROOT, *log = NULL, *v, *cmd, *args[3];
    int root_given = 0, i, nargs = 0, list_mode = 0;  /* list: 1 -q, 2 table, 3 json */
    int force = 0;  /* delete --force */
    char *dir;

    g_argc = argc;
    g_argv = argv;
    if (argc < 1)
        fallback();
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if ((v = option_value(a, "--root", &i)) != NULL) {
            root = v;
            root_given = 1;
        } else if ((v = option_value(a, "--log-format", &i)) != NULL) {
            if (strcmp(v, "text") && strcmp(v, "json"))
                fallback();
        } else if ((v = option_value(a, "--log", &i)) != NULL) {
            log = v;
        } else if ((v = option_value(a, "--rootless", &i)) != NULL) {
            if (strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "auto"))
                fallback();
        } else if (strcmp(a, "--systemd-cgroup") != 0) {
            fallback();  /* --debug, --help, --version, unknown options, -- */
        }
    }
    if (i >= argc)
        fallback();
    cmd = argv[i++];
    if (!strcmp(cmd, "list")) {
        int quiet = 0, fmt_seen = 0, table = 1;
        for (; i < argc; i++) {
            if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
                if (quiet++)
                    fallback();
            } else if ((v = option_value(argv[i], "--format", &i)) != NULL
                       || (!strcmp(argv[i], "-f") && (v = option_value(argv[i], "-f", &i)))) {
                if (fmt_seen++ || (strcmp(v, "table") && strcmp(v, "json")))
                    fallback();
                table = !strcmp(v, "table");
            } else {
                fallback();  /* arguments, other spellings (-qf, -fjson), --help, -- */
            }
        }
        list_mode = quiet ? 1 : table ? 2 : 3;
    }
    for (; i < argc; i++) {
        /* delete --force of a stopped container is a plain delete, of a running one a
         * kill first (a missing or corrupt one, where --force differs, is left to Python) */
        if (!strcmp(cmd, "delete") && (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--force"))) {
            force = 1;
            continue;
        }
        if (argv[i][0] == '-' || nargs == 2)
            fallback();  /* options (--all, --force, ...) and too many arguments */
        args[nargs++] = argv[i];
    }
    /* Only an absolute root without `..` is the same path to us and to os.path.abspath;
     * a user's default root is $XDG_RUNTIME_DIR/pyoci (pyoci.userns.default_root). */
    if (root[0] != '/' || strstr(root, "/..") != NULL || (!root_given && geteuid() != 0))
        fallback();
    if (list_mode == 0 && (nargs < 1 || !valid_id(args[0])))
        fallback();
    if (list_mode == 0 && strcmp(cmd, "kill") != 0 && nargs != 1)
        fallback();
    if (strcmp(cmd, "state") && strcmp(cmd, "kill") && strcmp(cmd, "start")
            && strcmp(cmd, "delete") && list_mode == 0)
        fallback();
    if (log != NULL && *log != '\0') {
        /* the --log file is created at start-up, as runc does (pyoci.log.setup) */
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
        if (fd < 0)
            fallback();
        close(fd);
    }
    if (list_mode != 0)
        return cmd_list(root, list_mode == 1, list_mode == 2);
    dir = path_join(root, args[0]);
    if (!strcmp(cmd, "state"))
        return cmd_state(dir);
    if (!strcmp(cmd, "kill"))
        return cmd_kill(dir, nargs > 1 ? args[1] : NULL);
    if (!strcmp(cmd, "delete"))
        return cmd_delete(root, args[0], dir, force);
    return cmd_start(dir);
}
