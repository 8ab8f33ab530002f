/* registry.h - the one operator registry: every op family's schema rows,
 * resolved by (domain, op_type, opset). */
#ifndef ONYX_REGISTRY_H
#define ONYX_REGISTRY_H

#include "core/op.h"

/* The row for op_type in domain with the newest since_version <= opset, or
 * NULL. When the op exists but only at newer opsets, *min_version (if not
 * NULL) receives the oldest since_version available, else 0. */
const onyx_op_schema *onyx_registry_find(const char *domain, const char *op_type, int64_t opset,
                                         int *min_version);

/* The newest opset of `domain` that onyx implements (the ONNX release it
 * follows), or -1 for a domain it does not know. Models importing a newer
 * opset are refused at load: later opsets may change semantics silently. */
int64_t onyx_registry_max_opset(const char *domain);

/* Iteration over every row, in family order (for docs/operators.md). */
typedef void (*onyx_registry_visit_fn)(void *user, const onyx_op_schema *row);
void onyx_registry_each(onyx_registry_visit_fn fn, void *user);

#endif
