/* The Alpaca prompt templates (SPEC 6.2), shared by `bin/prepare alpaca` (training examples) and
 * `bin/generate --alpaca` (prompts). */
#ifndef MT_ALPACA_H
#define MT_ALPACA_H

#include "data/tok.h"

/* With input (used iff the input is not empty) and without; both end at "### Response:". */
extern const char ALPACA_PROMPT_INPUT[];
extern const char ALPACA_PROMPT_NO_INPUT[];

/* out = tmpl with each {instruction} and {input} replaced literally (out is cleared first). */
void alpaca_render(mt_bytes *out, const char *tmpl, const mt_bytes *instruction, const mt_bytes *input);

#endif
