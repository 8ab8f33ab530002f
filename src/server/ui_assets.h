/* ui_assets.h - the web page of `onyx serve` (web/: index.html, app.js,
 * style.css), embedded in the executable as byte arrays by tools/embed.c at
 * build time (the generated source is $(BUILD)/gen/ui_assets.c).
 *
 * Owns: the lookup from a request path to an embedded file. Does not own:
 * answering the request (src/server/server.c) or the page itself (web/).
 */
#ifndef ONYX_UI_ASSETS_H
#define ONYX_UI_ASSETS_H

#include <stddef.h>

/* One embedded file: immutable, static storage. `data` has `size` bytes and
 * one extra NUL after them (not counted in size). */
typedef struct onyx_asset {
    const char *path;         /* "/ui/app.js" */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const unsigned char *data; /* (size) */
    size_t size;
} onyx_asset;

/* The asset served at the URL path `path` (without the query string), or
 * NULL. "/", "/ui" and "/ui/" give /ui/index.html; "/ui/NAME" gives the file
 * web/NAME. The result is static: never freed. */
const onyx_asset *onyx_ui_find(const char *path);

#endif /* ONYX_UI_ASSETS_H */
