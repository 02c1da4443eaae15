/** Where a committed credential change is pushed straight into the read model (iam's running access read model). */
export interface CredentialPublisher {
  apiKeys(keyIds: readonly string[]): Promise<void>;
  serviceIdentity(name: string): Promise<void>;
}

/**
 * The short path from a commit to the read model. Every change also goes
 * out as an outbox event that iam's projection applies, which is what makes
 * it durable; this path only makes a revocation or an emergency disable
 * visible to every gateway and subgraph within milliseconds of the commit
 * instead of after the relay and the consumer (issue 15: within 1 s). Both
 * writes are "put if newer", so their order does not matter. Until iam's
 * read model runs (seeds, CLIs) there is nothing to push to, and nothing is.
 */
export class CredentialPublication {
  private target: CredentialPublisher | undefined;

  attach(target: CredentialPublisher): void {
    this.target = target;
  }

  detach(): void {
    this.target = undefined;
  }

  async apiKeys(keyIds: readonly string[]): Promise<void> {
    if (keyIds.length > 0) await this.target?.apiKeys(keyIds);
  }

  async serviceIdentity(name: string): Promise<void> {
    await this.target?.serviceIdentity(name);
  }
}
