// weave-net: the CNI plugin the container runtime runs (/opt/cni/bin/weave-net), a thin relay to
// the weave daemon. Written in C, linked statically, because it starts once per pod and its
// start-up is the runtime's wait: a Node.js executable spent ~35 ms starting, this one ~2 ms, and
// it runs on a bare host with no Node.js and no glibc of a particular version.
//
// It decides as little as it can; every CNI rule (env, config, results, errors) is the daemon's,
// in TypeScript (src/cni/plugin.ts, run in the daemon for POST /cni/exec). The stages:
//   1. CNI_COMMAND: VERSION is answered here, without stdin or daemon; missing/unknown is code 7.
//   2. stdin, at most MAX_CONFIG bytes (4 if more), checked to be JSON (6 if not, naming the
//      position) and read for two top-level strings: "socket" (where the daemon listens, default
//      WEFT_DEFAULT_SOCKET) and "cniVersion" (the version of our own error JSON).
//   3. The relay: `POST /cni/exec` over the unix socket with {"env": {CNI_*}, "stdin": "<config>"};
//      the answer's body is printed as it is, its `Weave-Cni-Exit` header is the exit status and
//      its `Weave-Cni-Stderr` header (percent-encoded) a line for stderr.
//   4. No daemon: ADD, CHECK, GC -> 11, STATUS -> 50, DEL -> the request is written to the
//      pending-release directory beside the socket (the daemon replays it when it starts) and
//      succeeds. A daemon that answers nonsense -> 100; one that says nothing -> 11 at the
//      command's timeout. Never a crash, never a hang.
//
// Versions, the default socket and the timeouts come from the TypeScript (versions.ts,
// cni-protocol.ts) through cni-constants.h, which scripts/build-cni.mjs generates.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cni-constants.h"

/** The largest network config read from stdin: far above any real one (a GC lists a node's pods). */
#define MAX_CONFIG (1024 * 1024)
/** JSON nesting deeper than this is refused, so that recursion stays bounded. */
#define MAX_DEPTH 64
/** The daemon's answer: headers, and a body (a result or error JSON; small). */
#define MAX_HEADERS (64 * 1024)
#define MAX_BODY (4 * 1024 * 1024)
/** A pending-release file name longer than this is not made from the attachment (see record_release). */
#define MAX_PENDING_NAME 200

enum { CODE_INCOMPATIBLE = 1, CODE_IO = 5, CODE_DECODE = 6, CODE_ENV = 7, CODE_INVALID_CONFIG = 4,
       CODE_TRY_LATER = 11, CODE_NOT_AVAILABLE = 50, CODE_INTERNAL = 100 };

/** The environment variables relayed, and the only ones read. */
static const char *const RELAYED_ENV[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"};
#define N_RELAYED_ENV (sizeof RELAYED_ENV / sizeof RELAYED_ENV[0])

// ---------------------------------------------------------------------------------------------
// A growable byte buffer. Every append checks its bound; on failure the caller reports code 100.

typedef struct {
  char *data;
  size_t len, cap;
} Buf;

static bool buf_reserve(Buf *b, size_t more) {
  if (more > SIZE_MAX / 2 - b->len) return false;
  if (b->len + more + 1 <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + more + 1) cap *= 2;
  char *d = realloc(b->data, cap);
  if (d == NULL) return false;
  b->data = d;
  b->cap = cap;
  return true;
}

static bool buf_add(Buf *b, const char *s, size_t n) {
  if (!buf_reserve(b, n)) return false;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
  return true;
}

static bool buf_str(Buf *b, const char *s) { return buf_add(b, s, strlen(s)); }

static bool buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool buf_printf(Buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !buf_reserve(b, (size_t)n)) return false;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return true;
}

/** `s` as a JSON string, quotes included, escaped as JSON.stringify does; other bytes pass. */
static bool buf_json_string(Buf *b, const char *s, size_t n) {
  if (!buf_add(b, "\"", 1)) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    const char *e = NULL;
    switch (c) {
      case '"': e = "\\\""; break;
      case '\\': e = "\\\\"; break;
      case '\b': e = "\\b"; break;
      case '\f': e = "\\f"; break;
      case '\n': e = "\\n"; break;
      case '\r': e = "\\r"; break;
      case '\t': e = "\\t"; break;
      default:
        if (c < 0x20) {
          snprintf(esc, sizeof esc, "\\u%04x", c);
          e = esc;
        }
    }
    if (e != NULL ? !buf_str(b, e) : !buf_add(b, (const char *)&s[i], 1)) return false;
  }
  return buf_add(b, "\"", 1);
}

// ---------------------------------------------------------------------------------------------
// Output: the result or error JSON on stdout, a line on stderr, both written whole.

static bool write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= (size_t)w;
  }
  return true;
}

/** The version our own errors are written in: the config's when it is one we speak. */
static const char *error_version = WEFT_CNI_LATEST_VERSION;

/** Prints the CNI error JSON and "weave-net: msg" on stderr; returns the exit status (1). */
static int fail(int code, const char *details, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(int code, const char *details, const char *fmt, ...) {
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap); // truncates a long message rather than overflow
  va_end(ap);
  Buf out = {0};
  bool ok = buf_str(&out, "{\"cniVersion\":") && buf_json_string(&out, error_version, strlen(error_version)) &&
            buf_printf(&out, ",\"code\":%d,\"msg\":", code) && buf_json_string(&out, msg, strlen(msg));
  if (ok && details != NULL) ok = buf_str(&out, ",\"details\":") && buf_json_string(&out, details, strlen(details));
  ok = ok && buf_str(&out, "}\n");
  if (ok) write_all(STDOUT_FILENO, out.data, out.len);
  else write_all(STDOUT_FILENO, "{\"code\":100,\"msg\":\"weave-net: out of memory\"}\n", 46);
  free(out.data);
  Buf err = {0};
  if (buf_printf(&err, "weave-net: %s\n", msg)) write_all(STDERR_FILENO, err.data, err.len);
  free(err.data);
  return 1;
}

// ---------------------------------------------------------------------------------------------
// A validating JSON reader (RFC 8259): recursive descent over the whole text, depth-limited. It
// keeps only what the relay needs: the decoded values of the top-level strings "socket" and
// "cniVersion" (the last one wins for a repeated key, as JSON.parse), and the raw text of the
// "socket" value, to quote it in an error.

typedef struct {
  const char *s;
  size_t n, pos;
  int depth;
  char error[160];
} Json;

typedef struct {
  bool is_object;
  Buf socket, version;
  bool has_socket, socket_is_string, has_version, version_is_string;
  size_t socket_start, socket_end;
} TopLevel;

static bool json_err(Json *j, const char *what) {
  if (j->error[0] == '\0') snprintf(j->error, sizeof j->error, "%s at position %zu", what, j->pos);
  return false;
}

static void json_ws(Json *j) {
  while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' || j->s[j->pos] == '\n' || j->s[j->pos] == '\r')) j->pos++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool json_hex4(Json *j, unsigned *out) {
  if (j->n - j->pos < 4) return json_err(j, "unfinished \\u escape");
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(j->s[j->pos + (size_t)i]);
    if (h < 0) return json_err(j, "bad \\u escape");
    v = v * 16 + (unsigned)h;
  }
  j->pos += 4;
  *out = v;
  return true;
}

static bool utf8_put(Buf *b, unsigned cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) { u[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { u[0] = (char)(0xc0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3f)); n = 2; }
  else if (cp < 0x10000) { u[0] = (char)(0xe0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[2] = (char)(0x80 | (cp & 0x3f)); n = 3; }
  else { u[0] = (char)(0xf0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3f)); u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[3] = (char)(0x80 | (cp & 0x3f)); n = 4; }
  return buf_add(b, u, n);
}

/** A string at j->pos (on its opening quote); decoded into `out` when out is not NULL. */
static bool json_string(Json *j, Buf *out) {
  j->pos++; // the opening quote
  for (;;) {
    if (j->pos >= j->n) return json_err(j, "unterminated string");
    unsigned char c = (unsigned char)j->s[j->pos];
    if (c == '"') {
      j->pos++;
      return true;
    }
    if (c < 0x20) return json_err(j, "control character in string");
    if (c != '\\') {
      if (out != NULL && !buf_add(out, (const char *)&j->s[j->pos], 1)) return json_err(j, "out of memory");
      j->pos++;
      continue;
    }
    j->pos++;
    if (j->pos >= j->n) return json_err(j, "unterminated string");
    char e = j->s[j->pos++];
    unsigned cp;
    switch (e) {
      case '"': cp = '"'; break;
      case '\\': cp = '\\'; break;
      case '/': cp = '/'; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case 'n': cp = '\n'; break;
      case 'r': cp = '\r'; break;
      case 't': cp = '\t'; break;
      case 'u':
        if (!json_hex4(j, &cp)) return false;
        // A surrogate pair is one code point; a lone surrogate is kept as JSON.parse keeps it.
        if (cp >= 0xd800 && cp < 0xdc00 && j->n - j->pos >= 6 && j->s[j->pos] == '\\' && j->s[j->pos + 1] == 'u') {
          size_t save = j->pos;
          unsigned lo;
          j->pos += 2;
          if (json_hex4(j, &lo) && lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          else { j->pos = save; j->error[0] = '\0'; }
        }
        break;
      default:
        j->pos--;
        return json_err(j, "bad escape in string");
    }
    if (out != NULL && !utf8_put(out, cp)) return json_err(j, "out of memory");
  }
}

static bool json_number(Json *j) {
  size_t start = j->pos;
  if (j->s[j->pos] == '-') j->pos++;
  if (j->pos < j->n && j->s[j->pos] == '0') j->pos++;
  else if (j->pos < j->n && j->s[j->pos] >= '1' && j->s[j->pos] <= '9') while (j->pos < j->n && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') j->pos++;
  else return json_err(j, "bad number");
  if (j->pos < j->n && j->s[j->pos] == '.') {
    j->pos++;
    if (j->pos >= j->n || j->s[j->pos] < '0' || j->s[j->pos] > '9') return json_err(j, "bad number");
    while (j->pos < j->n && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') j->pos++;
  }
  if (j->pos < j->n && (j->s[j->pos] == 'e' || j->s[j->pos] == 'E')) {
    j->pos++;
    if (j->pos < j->n && (j->s[j->pos] == '+' || j->s[j->pos] == '-')) j->pos++;
    if (j->pos >= j->n || j->s[j->pos] < '0' || j->s[j->pos] > '9') return json_err(j, "bad number");
    while (j->pos < j->n && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') j->pos++;
  }
  return j->pos > start;
}

static bool json_value(Json *j, TopLevel *top);

/** An object or array at j->pos; `top` is set only for the outermost value. */
static bool json_container(Json *j, TopLevel *top) {
  bool object = j->s[j->pos] == '{';
  char close = object ? '}' : ']';
  if (++j->depth > MAX_DEPTH) return json_err(j, "nesting deeper than 64 levels");
  j->pos++;
  json_ws(j);
  if (j->pos < j->n && j->s[j->pos] == close) {
    j->pos++;
    j->depth--;
    return true;
  }
  for (;;) {
    enum { OTHER, SOCKET, VERSION } key = OTHER;
    if (object) {
      json_ws(j);
      if (j->pos >= j->n || j->s[j->pos] != '"') return json_err(j, j->pos >= j->n ? "unexpected end of input" : "expected a string key");
      Buf name = {0};
      bool ok = json_string(j, top != NULL ? &name : NULL);
      if (ok && top != NULL && name.data != NULL) key = strcmp(name.data, "socket") == 0 ? SOCKET : strcmp(name.data, "cniVersion") == 0 ? VERSION : OTHER;
      // A key with a NUL in it (\u0000) is no key we look for, though strcmp would say so.
      if (ok && top != NULL && name.data != NULL && strlen(name.data) != name.len) key = OTHER;
      free(name.data);
      if (!ok) return false;
      json_ws(j);
      if (j->pos >= j->n || j->s[j->pos] != ':') return json_err(j, j->pos >= j->n ? "unexpected end of input" : "expected ':'");
      j->pos++;
    }
    json_ws(j);
    if (key != OTHER && j->pos < j->n && j->s[j->pos] == '"') {
      Buf *into = key == SOCKET ? &top->socket : &top->version;
      into->len = 0;
      size_t start = j->pos;
      if (!buf_reserve(into, 0) || !json_string(j, into)) return json_err(j, "out of memory");
      if (key == SOCKET) { top->has_socket = top->socket_is_string = true; top->socket_start = start; top->socket_end = j->pos; }
      else top->has_version = top->version_is_string = true;
    } else {
      size_t start = j->pos;
      if (!json_value(j, NULL)) return false;
      if (key == SOCKET) { top->has_socket = true; top->socket_is_string = false; top->socket_start = start; top->socket_end = j->pos; }
      if (key == VERSION) { top->has_version = true; top->version_is_string = false; }
    }
    json_ws(j);
    if (j->pos >= j->n) return json_err(j, "unexpected end of input");
    if (j->s[j->pos] == ',') {
      j->pos++;
      continue;
    }
    if (j->s[j->pos] == close) {
      j->pos++;
      j->depth--;
      return true;
    }
    return json_err(j, object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static bool json_literal(Json *j, const char *word) {
  size_t n = strlen(word);
  if (j->n - j->pos < n || memcmp(j->s + j->pos, word, n) != 0) return json_err(j, "unexpected token");
  j->pos += n;
  return true;
}

static bool json_value(Json *j, TopLevel *top) {
  json_ws(j);
  if (j->pos >= j->n) return json_err(j, "unexpected end of input");
  char c = j->s[j->pos];
  if (c == '{' || c == '[') return json_container(j, c == '{' ? top : NULL);
  if (c == '"') return json_string(j, NULL);
  if (c == '-' || (c >= '0' && c <= '9')) return json_number(j);
  if (c == 't') return json_literal(j, "true");
  if (c == 'f') return json_literal(j, "false");
  if (c == 'n') return json_literal(j, "null");
  return json_err(j, "unexpected token");
}

/** Validates the whole text; fills `top` for a top-level object. False with j->error set if malformed. */
static bool json_read_top(Json *j, TopLevel *top) {
  json_ws(j);
  top->is_object = j->pos < j->n && j->s[j->pos] == '{';
  if (!json_value(j, top)) return false;
  json_ws(j);
  if (j->pos != j->n) return json_err(j, "unexpected text after the JSON value");
  return true;
}

// ---------------------------------------------------------------------------------------------
// The daemon's socket: one HTTP/1.1 exchange under a deadline.

typedef enum { ANSWERED, UNREACHABLE, TIMED_OUT, NOT_UNDERSTOOD } Outcome;

typedef struct {
  Outcome outcome;
  char reason[256];   // UNREACHABLE, NOT_UNDERSTOOD: why
  int exit_status;    // ANSWERED
  Buf body, stderr_line;
} Answer;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/** Node's wording for the usual socket errors, so that messages read as they always did. */
static const char *socket_reason(int err) {
  switch (err) {
    case ENOENT: return "no socket there";
    case ECONNREFUSED: return "nothing listens on the socket";
    case ECONNRESET: return "the connection was reset";
    case EPIPE: return "the connection was closed";
    case EACCES: return "permission denied";
    case ENOTSOCK: return "that path is not a socket";
    default: return strerror(err);
  }
}

/** Waits for `events` on fd until the deadline: 1 ready, 0 timed out, -1 error (errno). */
static int wait_fd(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

/** Case-insensitive "Name:" at the start of a header line; returns the value (spaces skipped) or NULL. */
static const char *header_value(const char *line, const char *name) {
  size_t n = strlen(name);
  if (strncasecmp(line, name, n) != 0 || line[n] != ':') return NULL;
  const char *v = line + n + 1;
  while (*v == ' ' || *v == '\t') v++;
  return v;
}

/** A non-negative decimal that is the whole of `s`, at most `max`; -1 otherwise. */
static long long whole_number(const char *s, long long max) {
  if (*s < '0' || *s > '9') return -1;
  long long v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    v = v * 10 + (*s - '0');
    if (v > max) return -1;
  }
  while (*s == ' ' || *s == '\t') s++;
  return *s == '\0' ? v : -1;
}

static void not_understood(Answer *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void not_understood(Answer *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->reason, sizeof a->reason, fmt, ap);
  va_end(ap);
  a->outcome = NOT_UNDERSTOOD;
}

/** Parses the status line and headers (NUL-terminated, CRLF lines); false = not understood. */
static bool parse_head(char *head, Answer *a, long long *content_length) {
  char *save = NULL;
  char *line = strtok_r(head, "\r\n", &save);
  int status = 0;
  if (line == NULL || (strncmp(line, "HTTP/1.1 ", 9) != 0 && strncmp(line, "HTTP/1.0 ", 9) != 0) || sscanf(line + 9, "%3d", &status) != 1) {
    not_understood(a, "it is not HTTP");
    return false;
  }
  if (status != 200) {
    not_understood(a, "HTTP status %d", status);
    return false;
  }
  *content_length = -1;
  a->exit_status = -1;
  while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
    const char *v;
    if ((v = header_value(line, "Content-Length")) != NULL) *content_length = whole_number(v, MAX_BODY);
    else if ((v = header_value(line, "Transfer-Encoding")) != NULL) *content_length = -2;
    else if ((v = header_value(line, WEFT_CNI_EXIT_HEADER)) != NULL) a->exit_status = (int)whole_number(v, 255);
    else if ((v = header_value(line, WEFT_CNI_STDERR_HEADER)) != NULL) {
      // Percent-decoded: the daemon encodes every byte outside printable ASCII, and '%'.
      a->stderr_line.len = 0;
      for (const char *p = v; *p != '\0'; p++) {
        char c = *p;
        if (c == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
          c = (char)(hexval(p[1]) * 16 + hexval(p[2]));
          p += 2;
        }
        if (!buf_add(&a->stderr_line, &c, 1)) break;
      }
    }
  }
  if (*content_length < 0) {
    not_understood(a, "%s", *content_length == -2 ? "the body is chunked, not of a Content-Length" : "no valid Content-Length");
    return false;
  }
  if (a->exit_status < 0) {
    not_understood(a, "no valid %s header", WEFT_CNI_EXIT_HEADER);
    return false;
  }
  return true;
}

/** Sends `request` to the daemon at `path` and reads its answer, all before `deadline`. */
static void exchange(const char *path, const Buf *request, int64_t deadline, Answer *a) {
  a->outcome = UNREACHABLE;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(a->reason, sizeof a->reason, "%s", strerror(errno));
    return;
  }
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path, path, strlen(path) + 1); // checked by the caller to fit
  // A full backlog blocks a unix connect: bounded by the send timeout.
  int64_t left = deadline - now_ms();
  if (left < 1) left = 1;
  struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    snprintf(a->reason, sizeof a->reason, "%s", strerror(errno));
    close(fd);
    return;
  }
  int r;
  do r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  while (r != 0 && errno == EINTR);
  if (r != 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) a->outcome = TIMED_OUT;
    snprintf(a->reason, sizeof a->reason, "%s", socket_reason(errno));
    close(fd);
    return;
  }
  for (size_t sent = 0; sent < request->len;) {
    int w = wait_fd(fd, POLLOUT, deadline);
    if (w == 0) { a->outcome = TIMED_OUT; close(fd); return; }
    ssize_t n = w < 0 ? -1 : send(fd, request->data + sent, request->len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      snprintf(a->reason, sizeof a->reason, "%s", socket_reason(errno));
      close(fd);
      return;
    }
    sent += (size_t)n;
  }
  // The answer: headers up to the blank line, then Content-Length bytes of body.
  Buf in = {0};
  long long content_length = -1;
  size_t body_at = 0;
  for (;;) {
    if (body_at > 0 && in.len - body_at >= (size_t)content_length) break;
    int w = wait_fd(fd, POLLIN, deadline);
    if (w == 0) { a->outcome = TIMED_OUT; break; }
    if (!buf_reserve(&in, 16 * 1024)) { not_understood(a, "out of memory"); break; }
    ssize_t n = w < 0 ? -1 : recv(fd, in.data + in.len, 16 * 1024, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      if (in.len == 0) snprintf(a->reason, sizeof a->reason, "%s", socket_reason(errno));
      else not_understood(a, "the connection broke in the middle of it (%s)", socket_reason(errno));
      break;
    }
    if (n == 0) {
      // Closed before a whole answer: nothing at all is a daemon that went away (as a reset).
      if (in.len == 0) snprintf(a->reason, sizeof a->reason, "the connection was closed");
      else not_understood(a, "it ended after %zu bytes, before the whole answer", in.len);
      break;
    }
    in.len += (size_t)n;
    in.data[in.len] = '\0';
    if (body_at == 0) {
      char *end = memmem(in.data, in.len, "\r\n\r\n", 4);
      if (end == NULL) {
        if (in.len > MAX_HEADERS) { not_understood(a, "no end of headers in %d bytes", MAX_HEADERS); break; }
        continue;
      }
      *end = '\0';
      body_at = (size_t)(end - in.data) + 4;
      if (!parse_head(in.data, a, &content_length)) break;
    }
    if (in.len - body_at > (size_t)content_length) { not_understood(a, "more bytes than its Content-Length"); break; }
  }
  if (body_at > 0 && a->outcome == UNREACHABLE && content_length >= 0 && in.len - body_at == (size_t)content_length) {
    a->outcome = ANSWERED;
    buf_add(&a->body, in.data + body_at, (size_t)content_length);
  } else if (a->outcome == UNREACHABLE && body_at > 0) {
    not_understood(a, "it ended before the whole answer");
  }
  free(in.data);
  close(fd);
}

// ---------------------------------------------------------------------------------------------
// DEL without a daemon: the request, as it would have been relayed, goes into a file the daemon
// replays at start. Written to a temporary name beginning with '.' (the daemon skips those),
// synced, renamed, and the directory synced: the daemon never reads half a record, and a crash
// leaves the whole record or none.

/** pendingReleaseDir of src/api/cni-protocol.ts. */
static void pending_dir(const char *socket, char *dir, size_t size) {
  const char *slash = strrchr(socket, '/');
  if (slash == NULL || slash == socket) snprintf(dir, size, "/%s", WEFT_CNI_PENDING_DIR_NAME);
  else snprintf(dir, size, "%.*s/%s", (int)(slash - socket), socket, WEFT_CNI_PENDING_DIR_NAME);
}

/** mkdir -p with mode 0700 for what it makes. */
static int mkdirs(const char *path) {
  char p[PATH_MAX];
  if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) { errno = ENAMETOOLONG; return -1; }
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == '\0') {
      char c = *s;
      *s = '\0';
      if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
      *s = c;
      if (c == '\0') return 0;
    }
  }
}

static int sync_path(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = fsync(fd);
  int e = errno;
  close(fd);
  errno = e;
  return r;
}

/** Writes the record; returns 0 and its path, or -1 with errno. */
static int record_release(const char *socket, const char *id, const char *ifname, const Buf *request, char *where, size_t size) {
  char dir[PATH_MAX], name[MAX_PENDING_NAME + 80], tmp[PATH_MAX];
  pending_dir(socket, dir, sizeof dir);
  if (strlen(id) + strlen(ifname) + 6 <= MAX_PENDING_NAME) {
    snprintf(name, sizeof name, "%s:%s.json", id, ifname);
  } else {
    // Too long for a file name: a name of its own for this record (the daemon reads the
    // attachment from the content). Two records of one attachment are harmless: DEL is idempotent.
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(name, sizeof name, "%.*s.%ld.%lld%09ld.json", MAX_PENDING_NAME / 2, id, (long)getpid(), (long long)ts.tv_sec, ts.tv_nsec);
  }
  if (snprintf(where, size, "%s/%s", dir, name) >= (int)size || snprintf(tmp, sizeof tmp, "%s/.%s.%d.tmp", dir, name, (int)getpid()) >= (int)sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  if (mkdirs(dir) != 0) return -1;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  bool ok = write_all(fd, request->data, request->len) && write_all(fd, "\n", 1) && fsync(fd) == 0;
  int e = errno;
  if (close(fd) != 0 && ok) { ok = false; e = errno; }
  if (!ok || rename(tmp, where) != 0) {
    if (ok) e = errno;
    unlink(tmp);
    errno = e;
    return -1;
  }
  return sync_path(dir);
}

// ---------------------------------------------------------------------------------------------

static int version_answer(void) {
  Buf out = {0};
  bool ok = buf_printf(&out, "{\"cniVersion\":\"%s\",\"supportedVersions\":[", WEFT_CNI_LATEST_VERSION);
  for (size_t i = 0; ok && i < WEFT_CNI_N_VERSIONS; i++) ok = buf_printf(&out, "%s\"%s\"", i ? "," : "", WEFT_CNI_VERSIONS[i]);
  ok = ok && buf_str(&out, "]}\n");
  int status = ok && write_all(STDOUT_FILENO, out.data, out.len) ? 0 : 1;
  free(out.data);
  return status;
}

/** Reads stdin whole, up to MAX_CONFIG bytes; -1 on error, -2 when larger. */
static long read_stdin(Buf *in) {
  for (;;) {
    if (!buf_reserve(in, 64 * 1024)) return -1;
    size_t room = 64 * 1024;
    ssize_t n = read(STDIN_FILENO, in->data + in->len, room);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) { // a non-blocking stdin: wait for it
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) return -1;
        continue;
      }
      return -1;
    }
    if (n == 0) return (long)in->len;
    in->len += (size_t)n;
    in->data[in->len] = '\0';
    if (in->len > MAX_CONFIG) return -2;
  }
}

static bool is_supported(const char *v) {
  for (size_t i = 0; i < WEFT_CNI_N_VERSIONS; i++) if (strcmp(v, WEFT_CNI_VERSIONS[i]) == 0) return true;
  return false;
}

/** The spec's container id: a letter or digit, then letters, digits, '_', '.', '-'. */
static bool valid_container_id(const char *id) {
  if (!((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z') || (id[0] >= '0' && id[0] <= '9'))) return false;
  for (const char *p = id; *p != '\0'; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

/** The kernel's rules for a link name (as validIfName in env.ts); the reason when not, else NULL. */
static const char *ifname_problem(const char *name) {
  if (strlen(name) > 15) return "longer than 15 bytes";
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return "not a name";
  if (strpbrk(name, "/: \t\n\r\v\f") != NULL) return "it contains '/', ':' or white space";
  return NULL;
}

typedef struct {
  const char *name;
  int timeout_ms;
  int down_code; // the code when there is no daemon (DEL: recorded instead)
} Command;

static const Command COMMANDS[] = {
  {"ADD", WEFT_CNI_TIMEOUT_ADD_MS, CODE_TRY_LATER},
  {"DEL", WEFT_CNI_TIMEOUT_DEL_MS, CODE_TRY_LATER},
  {"CHECK", WEFT_CNI_TIMEOUT_CHECK_MS, CODE_TRY_LATER},
  {"GC", WEFT_CNI_TIMEOUT_GC_MS, CODE_TRY_LATER},
  {"STATUS", WEFT_CNI_TIMEOUT_STATUS_MS, CODE_NOT_AVAILABLE},
};

int main(void) {
  // A runtime that stops reading our output must not kill us with SIGPIPE half-way: writes fail instead.
  signal(SIGPIPE, SIG_IGN);
  // 1. The command. VERSION needs nothing else.
  const char *command = getenv("CNI_COMMAND");
  if (command != NULL && strcmp(command, "VERSION") == 0) return version_answer();
  if (command == NULL || command[0] == '\0') {
    return fail(CODE_ENV, "weave-net is a CNI plugin: a container runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, VERSION, GC or STATUS) and the network configuration on stdin",
                "CNI_COMMAND is not set");
  }
  const Command *cmd = NULL;
  for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) if (strcmp(command, COMMANDS[i].name) == 0) cmd = &COMMANDS[i];
  if (cmd == NULL) {
    Buf q = {0};
    buf_json_string(&q, command, strnlen(command, 100));
    int r = fail(CODE_ENV, NULL, "CNI_COMMAND %s is not a CNI command (want one of ADD, DEL, CHECK, VERSION, GC, STATUS)", q.data ? q.data : "?");
    free(q.data);
    return r;
  }
  // 2. The config: bounded, valid JSON, and where the daemon is.
  Buf config = {0};
  long got = read_stdin(&config);
  if (got == -2) return fail(CODE_INVALID_CONFIG, NULL, "the network configuration on stdin is larger than %d bytes", MAX_CONFIG);
  if (got < 0) return fail(CODE_IO, NULL, "cannot read the network configuration on stdin: %s", strerror(errno));
  TopLevel top = {0};
  Json j = {.s = config.data ? config.data : "", .n = config.len};
  json_ws(&j);
  if (j.pos == j.n) {
    Buf details = {0};
    buf_printf(&details, "%s needs the network configuration (JSON) on stdin, as the container runtime sends it", cmd->name);
    int r = fail(CODE_DECODE, details.data, "no network configuration on stdin");
    free(details.data);
    return r;
  }
  j.pos = 0;
  if (!json_read_top(&j, &top)) return fail(CODE_DECODE, NULL, "the network configuration on stdin is not valid JSON: %s", j.error);
  if (top.version_is_string && strlen(top.version.data) == top.version.len && is_supported(top.version.data)) error_version = top.version.data;
  if (!top.is_object) return fail(CODE_DECODE, NULL, "the network configuration on stdin must be a JSON object");
  const char *socket_path = WEFT_CNI_DEFAULT_SOCKET;
  if (top.has_socket) {
    int len = (int)(top.socket_end - top.socket_start);
    if (!top.socket_is_string || top.socket.data[0] != '/' || strlen(top.socket.data) != top.socket.len) {
      return fail(CODE_INVALID_CONFIG, NULL, "\"socket\" must be the absolute path of the weave daemon's unix socket, got %.*s", len > 200 ? 200 : len, config.data + top.socket_start);
    }
    socket_path = top.socket.data;
  }
  if (strlen(socket_path) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
    return fail(CODE_INVALID_CONFIG, NULL, "\"socket\" %.200s is longer than the %zu bytes of a unix socket path", socket_path, sizeof ((struct sockaddr_un *)0)->sun_path - 1);
  }

  // 3. The relay: {"env": {...}, "stdin": "..."}.
  Buf body = {0};
  bool ok = buf_str(&body, "{\"env\":{");
  bool first = true;
  for (size_t i = 0; ok && i < N_RELAYED_ENV; i++) {
    const char *v = getenv(RELAYED_ENV[i]);
    if (v == NULL) continue;
    ok = buf_str(&body, first ? "\"" : ",\"") && buf_str(&body, RELAYED_ENV[i]) && buf_str(&body, "\":") && buf_json_string(&body, v, strlen(v));
    first = false;
  }
  ok = ok && buf_str(&body, "},\"stdin\":") && buf_json_string(&body, config.data, config.len) && buf_str(&body, "}");
  Buf request = {0};
  ok = ok && buf_printf(&request, "POST %s HTTP/1.1\r\nHost: weave\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                        WEFT_CNI_EXEC_PATH, body.len) && buf_add(&request, body.data, body.len);
  if (!ok) return fail(CODE_INTERNAL, NULL, "weave-net ran out of memory");
  // The command's timeout runs from here: stdin is the runtime's, the wait is for the daemon.
  Answer a = {0};
  exchange(socket_path, &request, now_ms() + cmd->timeout_ms, &a);

  switch (a.outcome) {
    case ANSWERED:
      if (a.stderr_line.len > 0) {
        buf_add(&a.stderr_line, "\n", 1);
        write_all(STDERR_FILENO, a.stderr_line.data, a.stderr_line.len);
      }
      if (!write_all(STDOUT_FILENO, a.body.data ? a.body.data : "", a.body.len)) return 1;
      return a.exit_status;
    case TIMED_OUT:
      return fail(CODE_TRY_LATER, NULL, "the weave daemon at %s did not answer %s within %d s", socket_path, cmd->name, cmd->timeout_ms / 1000);
    case NOT_UNDERSTOOD:
      return fail(CODE_INTERNAL, NULL, "the weave daemon's answer to %s at %s was not understood: %s", cmd->name, socket_path, a.reason);
    case UNREACHABLE:
      break;
  }

  // 4. No daemon.
  if (strcmp(cmd->name, "DEL") != 0) {
    Buf details = {0};
    buf_printf(&details, "%s needs the weave daemon (weaver) on this node; it listens on %s once it has started", cmd->name, socket_path);
    int r = fail(cmd->down_code, details.data, "the weave daemon is not running at %s (%s)", socket_path, a.reason);
    free(details.data);
    return r;
  }
  // DEL: the record is named for the attachment, so both must be there and fit a file name.
  const char *id = getenv("CNI_CONTAINERID"), *ifname = getenv("CNI_IFNAME");
  bool no_id = id == NULL || id[0] == '\0', no_if = ifname == NULL || ifname[0] == '\0';
  if (no_id || no_if) {
    return fail(CODE_ENV, NULL, "DEL needs %s in the environment, and %s not set",
                no_id && no_if ? "CNI_CONTAINERID, CNI_IFNAME" : no_id ? "CNI_CONTAINERID" : "CNI_IFNAME", no_id && no_if ? "they are" : "it is");
  }
  if (!valid_container_id(id)) {
    return fail(CODE_ENV, NULL, "CNI_CONTAINERID \"%.200s\" is not a valid container id (letters, digits, '_', '.', '-', starting with a letter or digit)", id);
  }
  const char *why = ifname_problem(ifname);
  if (why != NULL) return fail(CODE_ENV, NULL, "CNI_IFNAME \"%.100s\" is not a valid interface name: %s", ifname, why);
  char where[PATH_MAX];
  if (record_release(socket_path, id, ifname, &body, where, sizeof where) != 0) {
    return fail(CODE_IO, NULL, "the weave daemon is not running at %s (%s), and the release of %s could not be recorded for later: %s", socket_path, a.reason, id, strerror(errno));
  }
  Buf note = {0};
  if (buf_printf(&note, "weave-net: the weave daemon is not running at %s (%s); the release of %s/%s is recorded in %s and happens when it starts\n", socket_path, a.reason, id, ifname, where)) {
    write_all(STDERR_FILENO, note.data, note.len);
  }
  free(note.data);
  return 0;
}
