/**
 * The commented policy template `edgewarden policy init` prints. It parses as a valid policy
 * (a test keeps it so); replace the placeholder digest with your model's.
 */
export const POLICY_TEMPLATE = `# edgewarden policy: what this device may run and what may leave it.
# Sign it with an authority key:   edgewarden policy sign policy.yaml --key owner.key --out policy.dsse.json
# Install it on a device:          edgewarden policy apply policy.dsse.json --home DIR
# Several authorities (owner, fleet, community) may each publish one; the device enforces the most
# restrictive composition of all of them. Every section is optional: an absent section sets no rule.
apiVersion: edgewarden/v1
kind: Policy
authority: owner              # the name this authority's key is trusted under on the device
version: 1                    # raise it for every new policy: a lower version is refused (rollback)
expires: 2027-12-31T00:00:00Z # optional: after this time the policy no longer applies

models:
  unlisted: refuse            # refuse | flag: flag runs an unlisted model but reports NON_COMPLIANT
  allow:                      # model digests as 'edgewarden run' and records show them
    - name: vad
      digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"
      license: MIT
  publishers: []              # trusted model publishers: { name, key: <Ed25519 public key PEM or hex> };
                              # a model folder signed by one (OpenSSF model-signing, model.sig) is allowed

outputs:                      # rules per model output ("*" matches any); class = argmax of the last dimension
  - id: vad-floor
    model: vad
    output: output
    minConfidence: 0.5        # outputs below this confidence are blocked
    ratePerMinute: 600        # token bucket; burst defaults to the rate
  # - id: no-people
  #   model: detector
  #   output: scores
  #   labels: [background, person, car]
  #   blockedClasses: [person]  # outputs whose top class is listed never reach the application
  #   redact: false             # true: this output is removed, the others are delivered
  #   kill: false               # true: every output of the model is blocked

provenance:
  mode: batched               # batched | per-output (per-output is the stricter)
  checkpointEvery: 1000       # records per signed checkpoint
  checkpointMs: 5000
  salted: false               # true: input/output digests are HMAC-salted

audit:
  durability: group           # none | group | always
  retainDays: 365

telemetry:
  heartbeatSeconds: 10
  brokers: []                 # { url: "mqtts://fleet.example:8883", share: full | summary | none }
`;
