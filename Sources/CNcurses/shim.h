// ncursesw for Swift: the library's header plus small functions for what Swift cannot import
// (function-like macros: COLOR_PAIR, KEY_F, attribute constants built from NCURSES_BITS) and
// the few system headers the dashboard loop needs beside it.
#ifndef CNCURSES_SHIM_H
#define CNCURSES_SHIM_H

#define NCURSES_WIDECHAR 1
#include <ncursesw/curses.h>
#include <locale.h>
#include <langinfo.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <string.h>

/// Takes over the terminal on stdin/stdout (the C globals Swift 6 cannot touch): newterm, then
/// cbreak, no echo, keypad and non-blocking reads on the standard screen, cursor hidden.
/// Returns 0 on success, -1 when the terminal type is unknown, -2 when it cannot move the
/// cursor (a "dumb" terminal: a full-screen view would be garbage there).
static inline int CNcurses_start(void) {
    SCREEN *screen = newterm(NULL, stdout, stdin);
    if (screen == NULL) return -1;
    const char *move = tigetstr("cup");
    if (move == NULL || move == (const char *)-1) {
        endwin();
        delscreen(screen);
        return -2;
    }
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    // Esc closes the detail pane: wait 25 ms (not ncurses' default 1 s) for the rest of an
    // escape sequence before taking a lone Esc.
    set_escdelay(25);
    curs_set(0);
    return 0;
}

static inline int CNcurses_columns(void) { return COLS; }
static inline int CNcurses_lines(void) { return LINES; }
static inline int CNcurses_colorCount(void) { return COLORS; }

static inline int CNcurses_colorPair(int pair) { return (int)COLOR_PAIR(pair); }
static inline int CNcurses_keyF(int n) { return KEY_F(n); }
static inline int CNcurses_attrBold(void) { return (int)A_BOLD; }
static inline int CNcurses_attrDim(void) { return (int)A_DIM; }
static inline int CNcurses_attrReverse(void) { return (int)A_REVERSE; }
static inline int CNcurses_attrNormal(void) { return (int)A_NORMAL; }

/// The terminal's size from the kernel (after SIGWINCH), or 0 × 0.
static inline void CNcurses_windowSize(int fd, int *rows, int *columns) {
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) == 0) {
        *rows = size.ws_row;
        *columns = size.ws_col;
    } else {
        *rows = *columns = 0;
    }
}

/// Whether the locale's character set is UTF-8 (after setlocale(LC_ALL, "")).
static inline int CNcurses_localeIsUTF8(void) {
    const char *codeset = nl_langinfo(CODESET);
    return codeset != NULL && (strcmp(codeset, "UTF-8") == 0 || strcmp(codeset, "utf8") == 0);
}

#endif
