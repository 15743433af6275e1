import { isApiPath } from '../../../src/http/api-path';

test('an API path is recognised in any case, as the router matches it', () => {
  expect(isApiPath('/api/accounts')).toBe(true);
  expect(isApiPath('/API/ACCOUNTS')).toBe(true);
  expect(isApiPath('/Api/transfers')).toBe(true);
  expect(isApiPath('/api')).toBe(false);
  expect(isApiPath('/apix/accounts')).toBe(false);
  expect(isApiPath('/readyz')).toBe(false);
});
