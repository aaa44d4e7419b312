// Tokenizers: the tokenizer.json adapter and word → subword label alignment.
export { loadTokenizer } from './tokenizer';
export type { Encoding, TextTokenizer } from './tokenizer';
export { alignWords, truncateEncoding, IGNORE_LABEL } from './align';
export type { AlignOptions, Aligned } from './align';
