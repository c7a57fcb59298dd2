#include "data/alpaca.h"

#include <string.h>

const char ALPACA_PROMPT_INPUT[] =
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
    "### Input:\n{input}\n\n### Response:";
const char ALPACA_PROMPT_NO_INPUT[] =
    "Below is an instruction that describes a task. Write a response that "
    "appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
    "### Response:";

void alpaca_render(mt_bytes *out, const char *tmpl, const mt_bytes *instruction, const mt_bytes *input) {
    static const char INSTRUCTION[] = "{instruction}", INPUT[] = "{input}";
    out->n = 0;
    for (const char *c = tmpl; *c;) {
        if (!strncmp(c, INSTRUCTION, sizeof INSTRUCTION - 1)) {
            mt_bytes_append(out, instruction->data, instruction->n);
            c += sizeof INSTRUCTION - 1;
        } else if (!strncmp(c, INPUT, sizeof INPUT - 1)) {
            mt_bytes_append(out, input->data, input->n);
            c += sizeof INPUT - 1;
        } else {
            mt_bytes_append(out, c++, 1);
        }
    }
}
