/** kernel/native/src/paths.h, under a kernel/native folder (by default paths.mjs's own). */
export declare function pathsHeader(nativeDir?: string): string;
/** The TypeScript module generated from it (kernel/native-paths.generated.ts). */
export declare function generatedModule(nativeDir?: string): string;
/** The path names of a paths.h text, in its order; throws on any line that is not a comment, blank or `HPAIR_PATH(name)`. */
export declare function parseNativePaths(text: string, source?: string): string[];
/** The path names of kernel/native/src/paths.h, in its order. */
export declare function readNativePaths(nativeDir?: string): string[];
/** The generated module's text for these names. */
export declare function nativePathsModule(names: readonly string[]): string;
/** Writes kernel/native-paths.generated.ts from paths.h, unless it already holds that text; returns the names. */
export declare function writeNativePathsModule(nativeDir?: string): string[];
