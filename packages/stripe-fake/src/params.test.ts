import { canonicalParams, parseStripeForm, StripeFailure } from './params.js';

describe("Stripe's form-encoded parameters", () => {
  it('reads bracket keys into nested objects and arrays', () => {
    const body =
      'mode=payment&line_items[0][quantity]=1&line_items[0][price_data][currency]=eur&line_items[0][price_data][unit_amount]=500' +
      '&line_items[0][price_data][product_data][name]=Top%20up+balance&metadata[paymentSessionId]=abc&success_url=http%3A%2F%2Fx%2Fok%3Fs%3D%7BCHECKOUT_SESSION_ID%7D';
    expect(parseStripeForm(body)).toEqual({
      mode: 'payment',
      line_items: [{ quantity: '1', price_data: { currency: 'eur', unit_amount: '500', product_data: { name: 'Top up balance' } } }],
      metadata: { paymentSessionId: 'abc' },
      success_url: 'http://x/ok?s={CHECKOUT_SESSION_ID}',
    });
  });

  it('refuses a key given twice, a conflicting shape and a prototype key', () => {
    for (const body of ['a=1&a=2', 'a=1&a[b]=2', 'a[0]=1&a[b]=2', '__proto__[x]=1', 'a[constructor]=1']) {
      expect(() => parseStripeForm(body)).toThrow(StripeFailure);
    }
  });

  it('compares parameters whatever order their keys came in', () => {
    expect(canonicalParams(parseStripeForm('a=1&b[y]=2&b[x]=3'))).toBe(canonicalParams(parseStripeForm('b[x]=3&a=1&b[y]=2')));
    expect(canonicalParams(parseStripeForm('a[0]=1&a[1]=2'))).not.toBe(canonicalParams(parseStripeForm('a[0]=2&a[1]=1')));
  });
});
