export declare const MICRO_PLANES: 3;
export declare function pairChunk(group: number): number;
export declare function planeStride(group: number): number;
export declare function microOffset(kp: number, group: number, r: number, k: number): number;
