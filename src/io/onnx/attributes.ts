/** Typed, validated access to a node's attributes. */
import { int64Value } from './codec.js';
import { AttributeType, type AttributeProto, type TensorProto } from './proto.js';

export class Attributes {
  private readonly byName = new Map<string, AttributeProto>();

  constructor(
    attributes: readonly AttributeProto[] | undefined,
    private readonly fail: (why: string) => never,
  ) {
    for (const a of attributes ?? []) {
      if (a.ref_attr_name) fail(`attribute "${a.name}" refers to a function attribute, which is not supported`);
      this.byName.set(a.name ?? '', a);
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  int(name: string, fallback: number): number {
    const a = this.get(name, AttributeType.INT);
    if (a === undefined) return fallback;
    const v = int64Value(a.i);
    if (v === null) this.fail(`attribute ${name} is out of range`);
    return v!;
  }

  ints(name: string, fallback: readonly number[] | null): number[] | null {
    const a = this.get(name, AttributeType.INTS);
    if (a === undefined) return fallback === null ? null : [...fallback];
    return (a.ints ?? []).map((i) => {
      const v = int64Value(i);
      if (v === null) this.fail(`attribute ${name} has a value out of range`);
      return v!;
    });
  }

  float(name: string, fallback: number): number {
    const a = this.get(name, AttributeType.FLOAT);
    return a === undefined ? fallback : (a.f ?? 0);
  }

  floats(name: string): number[] | null {
    const a = this.get(name, AttributeType.FLOATS);
    return a === undefined ? null : [...(a.floats ?? [])];
  }

  string(name: string, fallback: string): string {
    const a = this.get(name, AttributeType.STRING);
    return a === undefined ? fallback : new TextDecoder().decode(a.s ?? new Uint8Array());
  }

  tensor(name: string): TensorProto | undefined {
    return this.get(name, AttributeType.TENSOR)?.t ?? undefined;
  }

  private get(name: string, type: number): AttributeProto | undefined {
    const a = this.byName.get(name);
    if (a === undefined) return undefined;
    // Files written before IR version 3 may leave `type` unset; trust the field that is present.
    if (a.type !== undefined && a.type !== 0 && a.type !== type) {
      this.fail(`attribute ${name} has attribute type ${a.type} but ${type} was expected`);
    }
    return a;
  }
}
