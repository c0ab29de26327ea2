/**
 * The closure of an image's contents: every store path, its NAR size and its references.
 * Shape of `nix path-info --json` reduced to what layering needs. Printable as JSON.
 */
export interface StorePathInfo {
  /** Full logical store path, e.g. `/nix/store/<32 chars>-hello-2.12`. */
  path: string;
  /** Size of the path's NAR serialisation in bytes (a good proxy for its layer's size). */
  narSize: number;
  /** Full store paths this path references; may include itself. */
  references: string[];
  /** `sha256:<nix-base32>` or SRI, when the source knows it. */
  narHash?: string;
}

export interface ClosureGraph {
  /** Logical store dir, `/nix/store` unless the source says otherwise. */
  storeDir: string;
  /** The paths the spec asked for (`contents`), in the spec's order. */
  roots: string[];
  /** Every path of the closure, in a deterministic order (sorted by path unless the source keeps Nix's order). */
  paths: StorePathInfo[];
}

/** Why a layer is where it is; shown by `imgbuild plan` and recorded on the layer's descriptor. */
export type LayerReason = 'popularity' | 'merged-tail' | 'auto' | 'explicit' | 'pinned' | 'carried-over' | 'new';

export interface PlannedLayer {
  /** Store paths in this layer, in the order they are written. */
  paths: string[];
  reason: LayerReason;
  /** Sum of the paths' narSize. */
  narSize: number;
}

/** Store layers only, bottom first. The builder adds base-image layers below and the customisation layer on top. */
export interface LayerPlan {
  strategy: LayeringStrategy;
  layers: PlannedLayer[];
}

/**
 * `popularity` and `auto` are nixpkgs' (same closure in, same layers out). `stable` is imgbuild's
 * own: layers chosen so that a dependency bump re-uploads close to the bytes that changed
 * (see layering/stable-layout.ts); with `previous` every strategy carries whole old layers over.
 */
export type LayeringStrategy = 'popularity' | 'auto' | 'stable';

export interface PlanOptions {
  strategy: LayeringStrategy;
  /**
   * How many store layers the plan may use. The builder computes it as
   * maxLayers - baseImageLayers - 1 (the customisation layer).
   */
  maxStoreLayers: number;
  /** Groups of store paths that form their own layers, in order (nix2container's `layers`). Closures are taken by the planner. */
  explicitLayers?: string[][];
  /** Store paths a user pins to a layer of their own. */
  pinned?: string[];
  /** Paths never put in a layer (dockerTools' excludePaths). */
  exclude?: string[];
  /** The store layers of the previous image, for stable layering: each entry is one old layer's paths. */
  previous?: string[][];
}
